# Sourced by up.sh and down.sh: the one test of "this PID is a server we
# started", so neither script can signal a process that is not ours.
# Needs $STATE (the state dir, absolute).

# alive PID: the process exists and is not a zombie (an exited server whose
# parent has not reaped it yet still answers kill -0)
alive() {
    local st
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    st=${st##*) }
    [[ -n $st && ${st%% *} != Z ]]
}
# is_ours NAME PID: PID is alive and is the gunicorn serving NAME that we
# started for this state dir (gunicorn rewrites its process title, so check
# the title names our module and the working directory is the state dir).
is_ours() {
    alive "$2" || return 1
    [[ $(readlink "/proc/$2/cwd" 2>/dev/null) == "$STATE" ]] || return 1
    tr '\0' ' ' <"/proc/$2/cmdline" 2>/dev/null | grep -qF -- "wsgi_$1:" || return 1
}
