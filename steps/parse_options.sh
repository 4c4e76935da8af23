# Parses --name value options for the script that sources it (Kaldi's convention).
#
#   --foo-bar VALUE   sets the shell variable foo_bar, which the script must already define
#   --config FILE     sources FILE (lines of name=value) first
#   --help            prints the script's $help_message (if set) and exits
#
# Booleans (variables whose default is true or false) only take true or false.
# Stops at the first argument that does not start with --; the rest stay in "$@".

while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      echo "${help_message:-no help for this script}"; exit 0 ;;
    --config)
      [ $# -ge 2 ] || { echo "$0: --config needs a file" >&2; exit 1; }
      # shellcheck disable=SC1090
      . "$2" || { echo "$0: cannot source config $2" >&2; exit 1; }
      shift 2 ;;
    --*=*)
      echo "$0: options are written '--name value', not '$1'" >&2; exit 1 ;;
    --*)
      __name=${1#--}; __name=${__name//-/_}
      if [ -z "${!__name+set}" ]; then
        echo "$0: unknown option $1" >&2; exit 1
      fi
      [ $# -ge 2 ] || { echo "$0: option $1 needs a value" >&2; exit 1; }
      __old=${!__name}
      if { [ "$__old" = true ] || [ "$__old" = false ]; } && [ "$2" != true ] && [ "$2" != false ]; then
        echo "$0: option $1 takes true or false, not '$2'" >&2; exit 1
      fi
      printf -v "$__name" '%s' "$2"
      shift 2 ;;
    *) break ;;
  esac
done
unset __name __old
true
