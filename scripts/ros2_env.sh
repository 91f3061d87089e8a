# shellcheck shell=bash
# Sourced (bash): activates the shared ROS 2 Jazzy install (../shared/ros2-jazzy) in the
# current shell and venv when it exists; returns 1 without it.
#
# Some copies of that install arrive with their shared-library symlinks flattened into small
# text files holding the link target (lib/libddsc.so.0 containing "libddsc.so.0.10.5"), and
# then rclpy does not import ("libddsc.so.0: file too short"). In that case the install is
# copied once into .ros2-jazzy/ (git-ignored) with those files turned back into symlinks,
# and the copy is activated instead; the shared folder is never changed.
__kraby_ros2_env() {
  local root src dst f target flat=""
  root=$(builtin cd "$(dirname "${BASH_SOURCE[0]}")/.." >/dev/null && pwd) || return 1
  src=${KRABY_ROS2_DIR:-$root/../shared/ros2-jazzy}
  [ -f "$src/activate" ] || return 1
  for f in "$src"/lib/*.so*; do
    [ -f "$f" ] && [ ! -L "$f" ] && [ "$(stat -c %s "$f")" -lt 256 ] || continue
    target=$(tr -d '\n' <"$f")
    [ -f "$src/lib/$target" ] && flat+=" $(basename "$f")"
  done
  if [ -n "$flat" ]; then
    dst=$root/.ros2-jazzy
    if [ ! -f "$dst/.repaired" ] || [ "$src/activate" -nt "$dst/.repaired" ]; then
      rm -rf "$dst" && cp -a "$src" "$dst" || return 1
      chmod -R u+w "$dst"
      for f in $flat; do
        target=$(tr -d '\n' <"$dst/lib/$f")
        ln -sf "$target" "$dst/lib/$f"
      done
      echo "ros2_env: $src has flattened library links ($flat ); using a repaired copy in $dst" >&2
      touch "$dst/.repaired"
    fi
    src=$dst
  fi
  # shellcheck disable=SC1091
  source "$src/activate"
}
__kraby_ros2_env
__kraby_ros2_rc=$?
unset -f __kraby_ros2_env
eval "unset __kraby_ros2_rc; return $__kraby_ros2_rc"
