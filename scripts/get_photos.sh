#!/usr/bin/env bash
# Fetches real photos for the image tests into models/photos/ (git-ignored), from Debian packages
# that are downloaded and unpacked, never installed (apt-get download + dpkg -x):
#   python3-skimage         chelsea.png (a cat), coffee.png (an espresso), camera.png (grey),
#                           logo.png (RGBA), green_palette.png and foo3x5x4indexed.png (palette,
#                           the second with transparency), rocket.jpg, hubble_deep_field.jpg,
#                           truncated.jpg (a truncated JPEG, for the error path)
#   darknet                 dog.jpg
#   python-matplotlib-data  grace_hopper.jpg
# Does nothing when they are all there.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=models/photos
skimage=(chelsea.png coffee.png camera.png logo.png green_palette.png foo3x5x4indexed.png rocket.jpg
         hubble_deep_field.jpg truncated.jpg)
all=("${skimage[@]}" dog.jpg grace_hopper.jpg)
missing=0
for f in "${all[@]}"; do [ -f "$dest/$f" ] || missing=1; done
[ "$missing" -eq 0 ] && exit 0

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"  # apt downloads as its own user where it can
download() {
  (cd "$tmp" && apt-get download -qq "$1" >/dev/null 2>&1) && return 0
  # A fresh machine may have no package lists yet.
  apt-get update -qq >/dev/null 2>&1 || true
  (cd "$tmp" && apt-get download -qq "$1" >/dev/null 2>&1)
}
for pkg in python3-skimage darknet python-matplotlib-data; do
  download "$pkg" || echo "get_photos: could not download $pkg"
done
for deb in "$tmp"/*.deb; do
  [ -e "$deb" ] && dpkg -x "$deb" "$tmp/root"
done
mkdir -p "$dest"
copy() { [ -f "$tmp/root/$1" ] && cp "$tmp/root/$1" "$dest/" || echo "get_photos: $1 not found"; }
for f in "${skimage[@]}"; do copy "usr/lib/python3/dist-packages/skimage/data/$f"; done
copy usr/share/darknet/data/dog.jpg
copy usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg
ls "$dest"
