#!/bin/sh
# Trim a virtual environment for a read-only runtime image: drop the installers, tests, C sources
# and translations nothing reads, strip debug symbols from extension modules, and precompile
# gameplane's bytecode (the root filesystem is read-only at run time: nothing compiles later).
#
#   prune.sh VENV PACKAGE...      PACKAGE: top-level packages of ours to compile with checked hashes
set -eu
venv=$1
shift
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')

# Installers are of no use on a read-only root; the image lists its packages with importlib.metadata.
"$venv/bin/python" -m pip uninstall --quiet --yes pip setuptools wheel
rm -f "$venv"/bin/activate* "$venv"/bin/Activate.ps1
# pycountry's translations (~22 MB): the services use its code tables, never localised names.
rm -rf "$site/pycountry/locales"
find "$site" -depth -type d -name tests -exec rm -rf {} +
find "$site" -type f \( -name '*.pyx' -o -name '*.pxd' -o -name '*.pxi' -o -name '*.c' -o -name '*.h' \) -delete
# Wheels ship extension modules with their debug symbols (uvloop 13.6 MB -> 1.6 MB stripped). A
# library whose RPATH auditwheel rewrote is left alone: stripping after patchelf can corrupt it.
if command -v strip >/dev/null && command -v readelf >/dev/null; then
  find "$site" -type f -name '*.so*' | while read -r so; do
    if ! readelf -d "$so" 2>/dev/null | grep -q -E 'RPATH|RUNPATH'; then
      strip --strip-unneeded "$so"
    fi
  done
else
  echo "prune.sh: no strip/readelf (binutils): extension modules keep their debug symbols" >&2
fi

# pip compiled the dependencies (timestamp-checked; COPY keeps mtimes). Our own packages are
# compiled with checked hashes: a dev pod copies them elsewhere (new mtimes) and syncs edits into
# them, and a hash-checked .pyc stays valid across the copy yet never hides an edit.
for pkg in "$@"; do
  "$venv/bin/python" -m compileall -q -j 0 --invalidation-mode checked-hash "$site/$pkg"
done
