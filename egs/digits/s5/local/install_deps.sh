#!/usr/bin/env bash
# Installs what the digits recipe needs beyond nnetavg itself, saying what it does, or stops with
# a clear message: espeak-ng (Debian package: synthesiser and its data) and, for --vocab words,
# the word list (Debian wamerican); from PyPI kaldi-hmm-gmm==1.1.4 with kaldifst==1.7.17 (pinned
# together: kaldifst 1.8 is binary-incompatible), kaldi-native-fbank and kaldialign, into the
# Python environment that runs nnetavg (./setup.sh speech does the same).
set -euo pipefail
need_words=${1:-false}

debs=()
ldconfig -p 2>/dev/null | grep -q libespeak-ng.so || [ -e /usr/lib/x86_64-linux-gnu/libespeak-ng.so.1 ] || debs+=(espeak-ng)
command -v espeak-ng >/dev/null || debs+=(espeak-ng)
[ "$need_words" = true ] && [ ! -f /usr/share/dict/words ] && debs+=(wamerican)
if [ ${#debs[@]} -gt 0 ]; then
  pkgs=$(printf '%s\n' "${debs[@]}" | sort -u | tr '\n' ' ')
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  if command -v apt-get >/dev/null && { [ -z "$sudo" ] || sudo -n true 2>/dev/null; }; then
    echo "install_deps.sh: installing Debian packages: $pkgs"
    $sudo apt-get install -y --no-install-recommends $pkgs >/dev/null 2>&1 || \
      { $sudo apt-get update >/dev/null 2>&1 && $sudo apt-get install -y --no-install-recommends $pkgs >/dev/null; } || \
      { echo "install_deps.sh: apt-get install $pkgs failed; install them and rerun" >&2; exit 1; }
  else
    echo "install_deps.sh: this recipe needs the Debian/Ubuntu packages: $pkgs" >&2
    echo "install_deps.sh: install them (apt-get install $pkgs) and rerun" >&2
    exit 1
  fi
fi

python=$(command -v nnet-forward | xargs dirname)/python
[ -x "$python" ] || python=python3
if ! "$python" -c 'import kaldi_hmm_gmm, kaldifst, kaldi_native_fbank, kaldialign' 2>/dev/null; then
  echo "install_deps.sh: installing kaldi-hmm-gmm==1.1.4 kaldifst==1.7.17 kaldi-native-fbank kaldialign into $python"
  "$python" -m pip install -q 'kaldi-hmm-gmm==1.1.4' 'kaldifst==1.7.17' kaldi-native-fbank kaldialign || \
    { echo "install_deps.sh: pip install failed; see above" >&2; exit 1; }
fi
