#!/usr/bin/env bash
# The package as a user installs it: build a wheel, install it (not -e) into a fresh venv, and use it from a
# folder outside the source tree: list the plugins, train a few steps on tiny toy faces, evaluate, edit, and
# have the console answer requests. A subpackage or data file missing from the wheel fails here.
#
# The fresh venv gets faderkit from the wheel alone; its dependencies (torch, about 5 GB) are not installed
# again but seen through a .pth file naming the site-packages of an existing environment (PYTHON, default
# .venv/bin/python, which scripts/setup.sh makes). That environment's own faderkit is never reached: its
# editable finder is only activated by its own .pth files, which a path in a .pth does not read, and the
# fresh venv's site-packages (the wheel's faderkit) stands first on sys.path; the script checks both.
#   bash scripts/wheel_smoke.sh            # uses .venv/bin/python
#   PYTHON=/path/to/python bash scripts/wheel_smoke.sh
set -euo pipefail
SRC="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-$SRC/.venv/bin/python}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/faderkit-wheel-smoke.XXXXXX")"
SERVER=""
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
step() { echo "wheel smoke: $*" >&2; }
started=$(date +%s)

step "building the wheel (from a copy of the files git knows: a stale build/ folder cannot hide a missing package)"
mkdir "$WORK/src"
git -C "$SRC" ls-files -z --cached --others --exclude-standard \
    | (cd "$SRC" && xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' _) \
    | tar -C "$SRC" --null -T - -cf - | tar -C "$WORK/src" -xf -
"$PYTHON" -m pip wheel --no-deps --disable-pip-version-check --quiet "$WORK/src" -w "$WORK/dist"
wheel=$(ls "$WORK"/dist/faderkit-*.whl)

step "installing $(basename "$wheel") into a fresh venv"
"$PYTHON" -m venv "$WORK/venv"
"$PYTHON" -c 'import site, sys; print("\n".join(p for p in sys.path if p.endswith("-packages")))' \
    > "$("$WORK/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/_deps.pth"
"$WORK/venv/bin/python" -m pip install --no-deps --disable-pip-version-check --quiet "$wheel"

mkdir "$WORK/here" && cd "$WORK/here"   # outside the source tree: nothing can come from it
export PATH="$WORK/venv/bin:$PATH"
python - "$WORK/venv" "$SRC" <<'EOF'
import sys, faderkit, faderkit_plugins
venv, src = sys.argv[1:]
for mod in (faderkit, faderkit_plugins):
    assert mod.__file__.startswith(venv) and not mod.__file__.startswith(src), f"{mod.__name__} from {mod.__file__}"
print(f"wheel smoke: faderkit {faderkit.__file__}", file=sys.stderr)
EOF

step "faderkit plugins"
faderkit plugins > plugins.txt
for name in paper toyfaces toyflowers celeba oxford102 mtcnn objectives; do
    grep -q " $name " plugins.txt || { cat plugins.txt; echo "wheel smoke: plugin $name not listed" >&2; exit 1; }
done

step "faderkit train (a few steps, tiny toy faces)"
cat > tiny.yaml <<'EOF'
data: {name: toyfaces, root: faces, image_size: 32, attributes: [Smiling, Eyeglasses], params: {count: 40}}
model: {n_layers: 3, init_fm: 8, max_fm: 32, discriminator: {name: latent, params: {conv_fm: 32, hid_dim: 32}}}
train: {steps: 6, batch_size: 8, log_every: 2, eval_every: 3, sample_every: 3, checkpoint_every: 3, eval_batches: 1, threads: 1}
classifier: {steps: 4, batch_size: 8, params: {init_fm: 8, max_fm: 16, hid_dim: 16}}
EOF
faderkit train tiny.yaml --run-dir run --quiet
test -f run/best.safetensors

step "faderkit eval"
faderkit eval run/best.safetensors --limit 4 --gt-images 2 --threads 1 --device cpu --quiet
test -s run/eval_test/report.json

step "faderkit edit"
face=$(ls faces/img_align_celeba/* | head -n 1)
faderkit edit "$face" -c run/best.safetensors --set Smiling=1 --compare -o edit.png
python -c 'from PIL import Image; assert Image.open("edit.png").size[0] > 0'

step "faderkit serve (the page, its script, the model, one upload and one edit)"
faderkit serve run/best.safetensors --port 0 --threads 1 > serve.out 2> serve.err &
SERVER=$!
python - <<'EOF'
import json, re, sys, time, urllib.request
from pathlib import Path
for _ in range(600):
    found = re.search(r"http://\S+/", Path("serve.out").read_text())
    if found:
        break
    time.sleep(0.1)
else:
    sys.exit("wheel smoke: serve printed no URL: " + Path("serve.err").read_text())
url = found.group(0)
get = lambda path: urllib.request.urlopen(url + path, timeout=60).read()
assert b"<html" in get("").lower()
assert len(get("static/console.js")) > 1000
model = json.loads(get("api/model"))
face = sorted(Path("faces/img_align_celeba").iterdir())[0].read_bytes()
held = json.loads(urllib.request.urlopen(urllib.request.Request(
    url + "api/images", data=face, headers={"Content-Type": "image/jpeg"}), timeout=60).read())
body = json.dumps({"image": held["id"], "values": {"Smiling": 1}}).encode()
png = urllib.request.urlopen(urllib.request.Request(
    url + "api/edit", data=body, headers={"Content-Type": "application/json"}), timeout=60).read()
assert png.startswith(b"\x89PNG"), png[:80]
print(f"wheel smoke: console at {url} answered; attributes {[a['name'] for a in model['attributes']]}", file=sys.stderr)
EOF
kill "$SERVER" && wait "$SERVER" 2>/dev/null || true
SERVER=""

step "passed in $(( $(date +%s) - started )) s"
