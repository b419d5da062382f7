"""Imports every model module so that `Base.metadata` knows all tables (for Alembic and tests).

Each feature area keeps its tables in its own module and adds its import here.
"""

from gis.access import audit as audit_models  # noqa: F401
from gis.analytics import models as analytics_models  # noqa: F401
from gis.intake import models as intake_models  # noqa: F401
from gis.layers import models  # noqa: F401
from gis.registry import models as registry_models  # noqa: F401
from gis.tickets import models as tickets_models  # noqa: F401
