#!/usr/bin/env bash
# Copies the front-end libraries installed by npm into webmap/static/vendor, where the app serves them.
set -euo pipefail
dest=webmap/static/vendor
rm -rf "$dest"
mkdir -p "$dest"
cp -r node_modules/leaflet/dist "$dest/leaflet"
cp -r node_modules/leaflet.markercluster/dist "$dest/markercluster"
mkdir -p "$dest/heat" && cp node_modules/leaflet.heat/dist/leaflet-heat.js "$dest/heat/"
mkdir -p "$dest/vectorgrid" && cp node_modules/leaflet.vectorgrid/dist/Leaflet.VectorGrid.bundled.min.js "$dest/vectorgrid/"
mkdir -p "$dest/swagger-ui"
cp node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/swagger-ui.css "$dest/swagger-ui/"
# Workbox for the service worker (webmap/static/sw.js): the loader and the modules it imports, prod builds only.
mkdir -p "$dest/workbox" && cp node_modules/workbox-sw/build/workbox-sw.js "$dest/workbox/"
for module in core routing strategies precaching expiration cacheable-response; do
  cp "node_modules/workbox-$module/build/workbox-$module.prod.js" "$dest/workbox/"
done
