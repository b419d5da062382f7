"""The map pages and their assets (Leaflet and plugins installed from npm at set-up, served locally).

This package never touches the database: pages fetch everything from the API.
"""

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
TEMPLATES_DIR = Path(__file__).parent / "templates"
