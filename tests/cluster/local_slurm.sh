#!/usr/bin/env bash
# written by galaxy-hpc tests/cluster/local_slurm.sh
#
# A real single-machine Slurm cluster (Slurm 22.05 from Debian 12) for the
# test suite and CI: munged, MariaDB, slurmdbd, slurmctld and two slurmd
# ("ghpc-n1", "ghpc-n2") on this host, all owned by this script.
#
#   tests/cluster/local_slurm.sh start|stop|status
#
# start   installs missing packages, writes /etc/slurm/{slurm,slurmdbd}.conf,
#         starts whatever is not running and waits until both nodes are idle
#         and sacct answers. Last line of stdout: "started" or
#         "already-running" (a pytest fixture reads it to know whether it
#         owns the cluster). Progress goes to stderr.
# stop    stops only the daemons recorded in our pid files, in reverse order.
# status  prints daemon/pid/alive and sinfo; exit 0 only if all is up.
#
# Everything the script owns lives under $GALAXY_HPC_SLURM_DIR
# (default /tmp/galaxy-hpc-slurm): pid files, logs, spool dirs, the MariaDB
# datadir and socket. System paths touched: /etc/slurm/*.conf (only files
# carrying the marker below), /etc/munge/munge.key (created if missing),
# /run/munge (munged's socket, where the client tools look by default) and
# one line in /etc/hosts.

set -euo pipefail

# pytest may call us with a venv PATH lacking sbin, or with SLURM_CONF
# pointing at a site's cluster: the tools we run must see ours.
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
export SLURM_CONF=/etc/slurm/slurm.conf

readonly MARKER="# written by galaxy-hpc tests/cluster/local_slurm.sh"
readonly STATE_DIR="${GALAXY_HPC_SLURM_DIR:-/tmp/galaxy-hpc-slurm}"
readonly PID_DIR="$STATE_DIR/pids"       # our pid files (what stop trusts)
readonly RUN_DIR="$STATE_DIR/run"        # the daemons' own pid files
readonly LOG_DIR="$STATE_DIR/log"
readonly SPOOL_DIR="$STATE_DIR/spool"
readonly DB_DIR="$STATE_DIR/mysql"
readonly DB_DATA="$DB_DIR/data"
readonly DB_SOCKET="$DB_DIR/mysqld.sock"
readonly DB_PASS_FILE="$DB_DIR/slurmdbd.password"

readonly SLURM_ETC=/etc/slurm
readonly SLURMDBD_CONF="$SLURM_ETC/slurmdbd.conf"
readonly MUNGE_KEY=/etc/munge/munge.key
readonly MUNGE_RUN=/run/munge            # default socket dir of the client lib

readonly CLUSTER=galaxyhpc
readonly NODES=(ghpc-n1 ghpc-n2)
readonly NODE_PORTS=(6821 6822)          # 6817-6819 are ctld/slurmd/dbd defaults
readonly CTLD_PORT=6817
readonly DBD_PORT=6819
readonly DB_PORT=3316                    # not 3306: never collide with a system MariaDB
readonly DB_NAME=slurm_acct_db
readonly DB_USER=slurm
readonly NODE_CPUS=4
readonly NODE_MEM_MB=4000

readonly PACKAGES=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)
# Start order; stop walks it backwards.
readonly DAEMONS=(munged mariadbd slurmdbd slurmctld "${NODES[@]/#/slurmd-}")
readonly START_TIMEOUT=60                # per daemon, seconds

readonly T0=$EPOCHREALTIME
# Progress on stderr, stamped with seconds since the script started: stdout
# stays reserved for the one word the pytest fixture reads.
log() {
    local us=$((${EPOCHREALTIME/./} - ${T0/./}))
    printf '[local_slurm %d.%01ds] %s\n' $((us / 1000000)) $((us / 100000 % 10)) "$*" >&2
}

# One-line reason naming the daemon and its log, then the log's tail.
fail() {
    local daemon=$1 logfile=$2 reason=$3
    echo "local_slurm.sh: $daemon $reason (log: $logfile)" >&2
    if [[ -f $logfile ]]; then
        echo "--- last lines of $logfile ---" >&2
        tail -n 25 "$logfile" >&2
    fi
    exit 1
}

die() { echo "local_slurm.sh: $*" >&2; exit 1; }

# The file holding a daemon's stdout/stderr. Slurm daemons in -D mode copy
# their whole LogFile (<name>.log, with timestamps) to stdout, and fatal
# config errors reach only stdout, so <name>.out is the one to show.
logfile_of() {
    case $1 in
        munged | mariadbd) echo "$LOG_DIR/$1.log" ;;
        *) echo "$LOG_DIR/$1.out" ;;
    esac
}

# ---------------------------------------------------------------- pid files

# Prints the pid of daemon $1 if our pid file names a live process that is
# still that daemon (guards against pid reuse after a reboot or a crash).
pid_of() {
    local name=$1 file="$PID_DIR/$1.pid" pid expect
    { read -r pid <"$file"; } 2>/dev/null || return 1
    [[ $pid =~ ^[0-9]+$ ]] && running "$pid" || return 1
    case $name in
        slurmd-*) expect="slurmd -D -N ${name#slurmd-}" ;;
        *) expect=$name ;;
    esac
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$expect" || return 1
    echo "$pid"
}

alive() { pid_of "$1" >/dev/null; }

# True while $1 runs. A zombie is not running: our daemons are reparented to
# pid 1, which may be slow to reap them (seconds, in some VMs/containers).
running() {
    local stat
    # read, not $(<file): under set -e bash 5.2 exits on a missing file there.
    { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
    stat=${stat##*) }                    # skip "pid (comm) "; comm may hold spaces
    [[ ${stat:0:1} != [ZX] ]]
}

# Runs "$@" fully detached: own session, stdin from /dev/null, stdout and
# stderr to a file, every other inherited descriptor closed (our lock on
# fd 9, and whatever pipes a shell or CI runner passed down). A daemon
# holding a caller's pipe makes that caller wait forever for EOF: pytest's
# subprocess.run(capture_output=True), `start | tee`, a CI step. The
# caller's environment (pytest's, a venv's) is not handed down either.
# The subshell and setsid exec in place (no job control in scripts, so no
# process-group leader to fork away from): $! is the daemon's own pid.
launch() {
    local name=$1 out=$2
    shift 2
    (
        for fd in "/proc/$BASHPID/fd/"*; do
            fd=${fd##*/}
            if ((fd > 2)); then { exec {fd}>&-; } 2>/dev/null || true; fi
        done
        exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin SLURM_CONF="$SLURM_CONF" ${TZ:+TZ="$TZ"} \
            setsid "$@" </dev/null >>"$out" 2>&1
    ) &
    echo $! >"$PID_DIR/$name.pid"
}

# True while the process we just launched as $1 runs. Not alive(): until
# the forked shell has exec'd, its cmdline is still this script's.
launched_running() {
    local pid
    { read -r pid <"$PID_DIR/$1.pid"; } 2>/dev/null && running "$pid"
}

# Polls "$@" until it succeeds; fails early if daemon $1 died meanwhile.
wait_ready() {
    local name=$1 logfile=$2
    shift 2
    local deadline=$((SECONDS + START_TIMEOUT))
    until "$@" >/dev/null 2>&1; do
        launched_running "$name" || fail "$name" "$logfile" "exited during startup"
        ((SECONDS < deadline)) || fail "$name" "$logfile" "not ready after ${START_TIMEOUT}s"
        sleep 0.2
    done
}

stop_daemon() {
    local name=$1 pid i
    if ! pid=$(pid_of "$name"); then
        rm -f "$PID_DIR/$name.pid"
        return 0
    fi
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        running "$pid" || break
        sleep 0.1
    done
    if running "$pid"; then
        log "$name ignored SIGTERM for 10s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            running "$pid" || break
            sleep 0.1
        done
    fi
    rm -f "$PID_DIR/$name.pid"
}

# ---------------------------------------------------------------- install

install_packages() {
    local missing=0 bin
    for bin in slurmctld slurmd slurmdbd sbatch sacct munged mariadbd mariadb-install-db; do
        command -v "$bin" >/dev/null 2>&1 || missing=1
    done
    ((missing)) || return 0

    local aptlog="$LOG_DIR/apt.log"
    log "installing ${PACKAGES[*]} (log: $aptlog)"
    # Keep the packages' maintainer scripts from starting their own munged,
    # MariaDB (on /var/lib/mysql) or Slurm daemons: we run our own.
    local own_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        own_policy=1
    fi
    local rc=0
    {
        export DEBIAN_FRONTEND=noninteractive
        # Stale or missing package lists: update only when the install fails.
        apt-get install -y --no-install-recommends "${PACKAGES[@]}" ||
            { apt-get update && apt-get install -y --no-install-recommends "${PACKAGES[@]}"; }
    } </dev/null >>"$aptlog" 2>&1 9>&- || rc=$?
    ((own_policy)) && rm -f /usr/sbin/policy-rc.d
    ((rc == 0)) || fail apt-get "$aptlog" "could not install ${PACKAGES[*]}"
}

# ---------------------------------------------------------------- configs

# We never overwrite a site's real Slurm configuration: only files that
# carry our marker (checked before anything is installed or started).
assert_ours() {
    local path
    for path in "$@"; do
        if [[ -e $path ]] && ! grep -qxF "$MARKER" "$path"; then
            die "refusing to overwrite $path: it exists and was not written by this script (no '$MARKER' line). Move it away to use the local test cluster."
        fi
    done
}

# Writes $2 to file $1 (mode $3) only if it changed. Daemons left running
# from before keep the old file: say so rather than run a mixed cluster.
write_owned_file() {
    local path=$1 content=$2 mode=$3
    assert_ours "$path"
    if [[ -e $path ]] && [[ "$(cat "$path")" == "$content" ]]; then
        chmod "$mode" "$path"
        return 0
    fi
    local tmp="$path.tmp.$$" d
    (umask 077 && printf '%s\n' "$content" >"$tmp")
    chmod "$mode" "$tmp"
    mv -f "$tmp" "$path"
    for d in "${DAEMONS[@]:2}"; do
        if alive "$d"; then
            log "warning: $path changed while $d runs; run '$0 stop' then '$0 start' to apply it"
            break
        fi
    done
}

write_slurm_conf() {
    local host i nodes_conf=""
    host=$(hostname)
    for i in "${!NODES[@]}"; do
        nodes_conf+="NodeName=${NODES[i]} NodeHostname=$host NodeAddr=127.0.0.1 Port=${NODE_PORTS[i]} CPUs=$NODE_CPUS RealMemory=$NODE_MEM_MB State=UNKNOWN"$'\n'
    done
    local node_list
    node_list=$(IFS=,; echo "${NODES[*]}")
    mkdir -p "$SLURM_ETC"
    write_owned_file "$SLURM_CONF" "$MARKER
# Single-machine test cluster; regenerated on every start.
ClusterName=$CLUSTER
SlurmctldHost=${host%%.*}(127.0.0.1)
SlurmctldPort=$CTLD_PORT
AuthType=auth/munge
# Step credentials live 10 s instead of 120. That lifetime is also how long a
# requeued job must wait before it may start again (BeginTime): 2 minutes
# would stall every requeue/preemption test. Launches here take milliseconds.
AuthInfo=cred_expire=10
CryptoType=crypto/munge
SlurmUser=root
SlurmdUser=root
# No MTA here: quiets the MailProg error at startup.
MailProg=/bin/true

StateSaveLocation=$SPOOL_DIR/slurmctld
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
# %n: one spool/pid/log per slurmd, both run on this host (slurmd -N <node>).
SlurmdSpoolDir=$SPOOL_DIR/slurmd-%n
SlurmdPidFile=$RUN_DIR/slurmd-%n.pid
SlurmdLogFile=$LOG_DIR/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info

# No cgroups here (no systemd, maybe a container): plain process tracking.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=pmi2
# Nodes declare more CPUs than the machine has.
SlurmdParameters=config_overrides

SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
SelectType=select/cons_tres
# Memory is not a consumable: tests must not wait on --mem.
SelectTypeParameters=CR_CPU
JobRequeue=1
KillWait=5
MinJobAge=30
ReturnToService=2
InactiveLimit=0
SlurmdTimeout=60

AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
JobCompType=jobcomp/none

${nodes_conf}PartitionName=debug Nodes=$node_list Default=YES MaxTime=INFINITE State=UP" 644
}

write_slurmdbd_conf() {
    local pass
    pass=$(<"$DB_PASS_FILE")
    write_owned_file "$SLURMDBD_CONF" "$MARKER
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
DebugLevel=info
LogFile=$LOG_DIR/slurmdbd.log
PidFile=$RUN_DIR/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=$DB_USER
StoragePass=$pass
StorageLoc=$DB_NAME" 600
}

ensure_hosts_entry() {
    # Slurm resolves node names (step launch, PMI); map both to loopback.
    local node missing=0
    for node in "${NODES[@]}"; do
        awk -v n="$node" '$1 !~ /^#/ { for (i = 2; i <= NF; i++) if ($i == n) f = 1 } END { exit !f }' \
            /etc/hosts || missing=1
    done
    if ((missing)); then
        echo "127.0.0.1 ${NODES[*]}" >>/etc/hosts ||
            die "cannot add '127.0.0.1 ${NODES[*]}' to /etc/hosts; add it by hand"
    fi
}

prepare_dirs() {
    mkdir -p "$PID_DIR" "$RUN_DIR" "$LOG_DIR" "$SPOOL_DIR/slurmctld" "$DB_DIR"
    local node
    for node in "${NODES[@]}"; do mkdir -p "$SPOOL_DIR/slurmd-$node"; done
    chmod 755 "$STATE_DIR"
    if [[ ! -s $DB_PASS_FILE ]]; then
        (umask 077 && head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$DB_PASS_FILE")
    fi
}

# ---------------------------------------------------------------- daemons

munge_works() { { munge -n </dev/null | unmunge; } >/dev/null 2>&1; }

start_munged() {
    alive munged && return 0
    # Another munged (the system's) already serving the default socket is as
    # good as ours, and ours could not bind there anyway.
    if munge_works; then
        log "munged: using the one already answering on $MUNGE_RUN (not started by this script)"
        return 0
    fi
    if [[ ! -s $MUNGE_KEY ]]; then
        log "creating $MUNGE_KEY"
        mkdir -p "$(dirname "$MUNGE_KEY")"
        mungekey --create --keyfile="$MUNGE_KEY" >/dev/null
    fi
    # munged refuses keys readable by anyone but itself.
    chown munge:munge "$MUNGE_KEY"
    chmod 0400 "$MUNGE_KEY"
    install -d -o munge -g munge -m 0755 "$MUNGE_RUN"
    local logfile
    logfile=$(logfile_of munged)
    log "starting munged"
    # setpriv execs (runuser would fork and stay as the parent we record).
    # In the foreground munged logs to stderr, i.e. to $logfile, which we
    # open as root: the munge user need not reach the state dir.
    launch munged "$logfile" \
        setpriv --reuid=munge --regid=munge --init-groups \
        munged --foreground \
        --socket="$MUNGE_RUN/munge.socket.2" --pid-file="$MUNGE_RUN/munged.pid"
    wait_ready munged "$logfile" munge_works
}

db_sql() {
    mariadb --no-defaults --socket="$DB_SOCKET" --user=root
}

db_ping() {
    mariadb-admin --no-defaults --socket="$DB_SOCKET" --user=root ping
}

# Durability is worthless for a throw-away test database; skipping the
# fsyncs makes the datadir setup and slurmdbd's first schema creation
# several times faster (mariadb-install-db: ~1 s instead of 2-5 s).
readonly DB_NOSYNC=(--innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 --innodb-flush-method=nosync)

start_mariadbd() {
    alive mariadbd && return 0
    local logfile
    logfile=$(logfile_of mariadbd)
    if [[ ! -d $DB_DATA/mysql ]]; then
        log "initialising MariaDB datadir $DB_DATA"
        rm -rf "$DB_DATA"
        # Runs as root: the state dir may sit where user mysql cannot reach.
        mariadb-install-db --no-defaults --user=root --datadir="$DB_DATA" \
            --auth-root-authentication-method=socket --skip-test-db "${DB_NOSYNC[@]}" \
            </dev/null >>"$LOG_DIR/mariadb-install.log" 2>&1 9>&- ||
            fail mariadb-install-db "$LOG_DIR/mariadb-install.log" "failed to initialise $DB_DATA"
    fi
    rm -f "$DB_SOCKET"
    log "starting mariadbd"
    launch mariadbd "$logfile" \
        mariadbd --no-defaults --user=root --datadir="$DB_DATA" \
        --socket="$DB_SOCKET" --port="$DB_PORT" --bind-address=127.0.0.1 \
        --pid-file="$RUN_DIR/mariadbd.pid" --skip-name-resolve \
        --innodb-buffer-pool-size=512M --innodb-log-file-size=64M \
        --innodb-lock-wait-timeout=900 "${DB_NOSYNC[@]}"
    wait_ready mariadbd "$logfile" db_ping
    local pass
    pass=$(<"$DB_PASS_FILE")
    # Idempotent, so it also repairs a lost password file.
    db_sql <<SQL >>"$logfile" 2>&1 || fail mariadbd "$logfile" "could not create database $DB_NAME / user $DB_USER"
CREATE DATABASE IF NOT EXISTS $DB_NAME;
CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$pass';
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$pass';
ALTER USER '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$pass';
ALTER USER '$DB_USER'@'localhost' IDENTIFIED BY '$pass';
GRANT ALL ON $DB_NAME.* TO '$DB_USER'@'127.0.0.1';
GRANT ALL ON $DB_NAME.* TO '$DB_USER'@'localhost';
SQL
}

# slurmctld 22.05 adds its cluster to the database when it first connects
# (measured: no "sacctmgr add cluster" needed). Without that row sacct knows
# no jobs and submitit reads every state as UNKNOWN, so start waits for it.
cluster_registered() {
    sacctmgr -n -P list cluster format=cluster 2>/dev/null | grep -qx "$CLUSTER"
}

start_slurmdbd() {
    local logfile
    logfile=$(logfile_of slurmdbd)
    if ! alive slurmdbd; then
        log "starting slurmdbd"
        launch slurmdbd "$logfile" slurmdbd -D
        # The first start creates the schema (tens of tables).
        wait_ready slurmdbd "$logfile" sacctmgr -n -P list cluster
    fi
}

ctld_up() { scontrol ping | grep -q 'is UP'; }

start_slurmctld() {
    alive slurmctld && return 0
    log "starting slurmctld"
    launch slurmctld "$(logfile_of slurmctld)" slurmctld -D
    wait_ready slurmctld "$(logfile_of slurmctld)" ctld_up
}

start_slurmd() {
    local node=$1
    alive "slurmd-$node" && return 0
    log "starting slurmd -N $node"
    launch "slurmd-$node" "$(logfile_of "slurmd-$node")" slurmd -D -N "$node"
}

# Both nodes schedulable (idle, or busy with jobs left from an earlier run).
nodes_up() {
    local states
    states=$(sinfo -h -N -p debug -o '%N %t' 2>/dev/null) || return 1
    local node
    for node in "${NODES[@]}"; do
        grep -qE "^$node (idle|mix|alloc)\$" <<<"$states" || return 1
    done
}

sacct_answers() { cluster_registered && sacct -n -X -S now -E now >/dev/null 2>&1; }

wait_nodes() {
    local deadline=$((SECONDS + START_TIMEOUT)) node
    until nodes_up; do
        for node in "${NODES[@]}"; do
            launched_running "slurmd-$node" ||
                fail "slurmd -N $node" "$(logfile_of "slurmd-$node")" "exited during startup"
        done
        ((SECONDS < deadline)) ||
            fail "slurmd" "$(logfile_of "slurmd-${NODES[0]}")" "nodes not idle after ${START_TIMEOUT}s: $(sinfo -h -N -o '%N=%t' 2>&1 | tr '\n' ' ')"
        sleep 0.2
    done
}

munged_ok() { alive munged || munge_works; }

all_up() {
    local d
    munged_ok || return 1
    for d in "${DAEMONS[@]:1}"; do alive "$d" || return 1; done
    nodes_up && sacct_answers
}

# ---------------------------------------------------------------- commands

cmd_start() {
    [[ $EUID -eq 0 ]] || die "start must run as root (it installs packages and runs the daemons)"
    assert_ours "$SLURM_CONF" "$SLURMDBD_CONF"
    prepare_dirs
    if all_up; then
        echo already-running
        return 0
    fi
    # One cluster per machine: a controller we did not start from this state
    # dir (another GALAXY_HPC_SLURM_DIR, a site's) would get our slurm.conf.
    if [[ -e $SLURM_CONF ]] && ! alive slurmctld && ctld_up >/dev/null 2>&1; then
        die "a slurmctld not started from $STATE_DIR already answers on this machine (another GALAXY_HPC_SLURM_DIR?); stop it first"
    fi
    install_packages
    ensure_hosts_entry
    write_slurm_conf
    write_slurmdbd_conf
    start_munged
    start_mariadbd
    start_slurmdbd
    start_slurmctld
    local node
    for node in "${NODES[@]}"; do start_slurmd "$node"; done
    wait_nodes
    local deadline=$((SECONDS + START_TIMEOUT))
    until sacct_answers; do
        ((SECONDS < deadline)) ||
            fail slurmdbd "$(logfile_of slurmdbd)" "sacct does not answer or cluster $CLUSTER is not registered"
        sleep 0.2
    done
    log "cluster up"
    echo started
}

cmd_stop() {
    [[ -d $PID_DIR ]] || return 0
    # Jobs still queued or running would outlive slurmd (slurmstepd and the
    # job's processes are detached from it): cancel them while we still can.
    if alive slurmctld; then
        local -a jobs
        mapfile -t jobs < <(squeue -h -o %i 2>/dev/null || true)
        if ((${#jobs[@]})); then
            log "cancelling jobs: ${jobs[*]}"
            scancel "${jobs[@]}" 2>/dev/null || true
            local deadline=$((SECONDS + 15))
            while [[ -n "$(squeue -h -o %i 2>/dev/null)" ]] && ((SECONDS < deadline)); do
                sleep 0.5
            done
        fi
    fi
    local i
    for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
        stop_daemon "${DAEMONS[i]}"
    done
}

cmd_status() {
    local d pid ok=0
    printf '%-16s %-8s %s\n' DAEMON PID ALIVE
    for d in "${DAEMONS[@]}"; do
        if pid=$(pid_of "$d"); then
            printf '%-16s %-8s %s\n' "$d" "$pid" yes
        elif [[ $d == munged ]] && munge_works; then
            printf '%-16s %-8s %s\n' "$d" - "yes (not ours)"
        else
            printf '%-16s %-8s %s\n' "$d" "$(cat "$PID_DIR/$d.pid" 2>/dev/null || echo -)" no
            ok=1
        fi
    done
    echo
    local nodes
    if nodes=$(sinfo -h -N -o %N 2>/dev/null); then
        sinfo
        for d in "${NODES[@]}"; do grep -qx "$d" <<<"$nodes" || ok=1; done
    else
        echo "sinfo: slurmctld not reachable"
        ok=1
    fi
    return $ok
}

main() {
    local cmd=${1:-}
    case $cmd in
        start | stop | status) ;;
        *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
    esac
    # Serialise concurrent start/stop (e.g. several pytest-xdist workers):
    # the second start waits, then finds the cluster already running.
    if [[ $cmd != status ]]; then
        mkdir -p "$STATE_DIR"
        exec 9>"$STATE_DIR/.lock"
        flock -w 300 9 || die "another local_slurm.sh holds $STATE_DIR/.lock"
    fi
    "cmd_$cmd"
}

main "$@"
