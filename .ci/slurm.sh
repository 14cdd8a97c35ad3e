#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for the tests marked `slurm`:
#
#   .ci/slurm.sh start    install (Debian packages) if missing, then start the daemons
#   .ci/slurm.sh stop     cancel every job, stop every daemon, leave no process behind
#   .ci/slurm.sh status   exit 0 when the cluster answers
#
# Run as root (CI is), without systemd. Everything lives under $CI_SLURM_DIR
# (default /tmp/seqbench-slurm): configuration, munge key and socket, MariaDB's data, Slurm's
# state and logs. Clients find the cluster through SLURM_CONF=$CI_SLURM_DIR/etc/slurm.conf,
# which `start` prints last as an `export` line (`eval "$(.ci/slurm.sh start)"`).
#
# Daemons: munged (authentication, private socket and key), mariadbd + slurmdbd (accounting:
# without it `sacct` is disabled and submitit never sees a cancelled or timed-out job end),
# slurmctld and one slurmd. All listen on 127.0.0.1 only. The node advertises more CPUs than
# the machine has (SlurmdParameters=config_overrides) so that several small jobs run at once.
# cgroups are avoided (proctrack/linuxproc, task/none, jobacct_gather/none): CI machines and
# containers rarely let a job manage them.
set -euo pipefail

DIR=${CI_SLURM_DIR:-/tmp/seqbench-slurm}
CLUSTER=seqbench-ci
NODE=$(hostname -s)
CPUS=${CI_SLURM_CPUS:-8}              # advertised, whatever the machine has
CTLD_PORT=${CI_SLURM_PORT:-16817}     # slurmctld; slurmd, slurmdbd and MariaDB use the next three
SLURMD_PORT=$((CTLD_PORT + 1))
DBD_PORT=$((CTLD_PORT + 2))
DB_PORT=$((CTLD_PORT + 3))
MUNGE_SOCKET=$DIR/munge/munge.socket.2
export SLURM_CONF=$DIR/etc/slurm.conf
PACKAGES=(slurm-wlm munge slurmdbd mariadb-server)

say() { echo "slurm.sh: $*" >&2; }
die() { say "$*"; exit 1; }

# -- processes ------------------------------------------------------------------------------------
pid_of() { # the live process recorded in $DIR/run/$1.pid, if any
    local file=$DIR/run/$1.pid pid
    [ -s "$file" ] || return 1
    pid=$(cat "$file")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

stop_daemons() { # SIGTERM the named daemons together, wait for them, SIGKILL after 15 s
    local pids=() name pid i
    for name in "$@"; do
        pid=$(pid_of "$name") && pids+=("$pid")
        rm -f "$DIR/run/$name.pid"
    done
    [ ${#pids[@]} -eq 0 ] && return 0
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for i in $(seq 150); do
        kill -0 "${pids[@]}" 2>/dev/null || break  # true while any of them lives
        sleep 0.1
    done
    for pid in "${pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            say "process $pid ($*) ignored SIGTERM for 15 s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
}

wait_for() { # wait_for SECONDS WHAT COMMAND...: run COMMAND every 0.1 s until it succeeds
    local seconds=$1 what=$2 i
    shift 2
    for i in $(seq $((seconds * 10))); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    return 1
}

# -- install --------------------------------------------------------------------------------------
install_packages() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" = 0 ] || die "installing ${missing[*]} needs root"
    say "installing ${missing[*]}"
    apt-get update -qq
    # policy-rc.d keeps the packages' own services from starting (no systemd here anyway).
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}

# -- configuration --------------------------------------------------------------------------------
configure() {
    rm -rf "$DIR"
    mkdir -p "$DIR"/{etc,run,log,ctld,spool,mysql}
    chmod 0755 "$DIR"
    # munged checks its directories: the socket's must be 0755 and not writable by others.
    install -d -m 0755 "$DIR/munge"
    install -d -m 0700 "$DIR/munge/key"
    dd if=/dev/urandom of="$DIR/munge/key/munge.key" bs=1024 count=1 status=none
    chmod 0400 "$DIR/munge/key/munge.key"

    cat >"$SLURM_CONF" <<EOF
# Written by .ci/slurm.sh: one node, loopback only, no cgroups, accounting through slurmdbd.
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
CredType=cred/munge
StateSaveLocation=$DIR/ctld
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
KillWait=5
MinJobAge=60
InactiveLimit=0
SchedulerParameters=sched_interval=2
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
AccountingStoragePass=$MUNGE_SOCKET
JobCompType=jobcomp/none
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS State=UNKNOWN
PartitionName=ci Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
    cat >"$DIR/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
CommunicationParameters=NoInAddrAny
SlurmUser=root
PidFile=$DIR/run/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=seqbench-ci
StorageLoc=slurm_acct_db
EOF
    chmod 0600 "$DIR/etc/slurmdbd.conf"  # slurmdbd refuses a readable one (it holds a password)
}

# -- daemons --------------------------------------------------------------------------------------
start_munge() {
    munged --force --socket="$MUNGE_SOCKET" --key-file="$DIR/munge/key/munge.key" \
        --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" \
        --seed-file="$DIR/munge/munged.seed"
    wait_for 10 munged munge -n -S "$MUNGE_SOCKET" || die "munged did not start: $DIR/log/munged.log"
}

start_mariadb() {
    mariadb-install-db --no-defaults --datadir="$DIR/mysql" --user=root --skip-test-db \
        --auth-root-authentication-method=socket >"$DIR/log/mariadb-install.log" 2>&1 ||
        die "mariadb-install-db failed: $DIR/log/mariadb-install.log"
    setsid mariadbd --no-defaults --datadir="$DIR/mysql" --user=root --bind-address=127.0.0.1 \
        --port="$DB_PORT" --socket="$DIR/run/mysql.sock" --pid-file="$DIR/run/mariadbd.pid" \
        --log-error="$DIR/log/mariadb.log" --skip-log-bin --innodb-buffer-pool-size=32M \
        --innodb-log-file-size=16M --performance-schema=OFF </dev/null >/dev/null 2>&1 &
    wait_for 30 mariadbd mariadb --no-defaults --socket="$DIR/run/mysql.sock" -uroot -e "SELECT 1" ||
        die "mariadbd did not start: $DIR/log/mariadb.log"
    mariadb --no-defaults --socket="$DIR/run/mysql.sock" -uroot -e "
        CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY 'seqbench-ci';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
}

start_slurm() {
    SLURM_CONF=$DIR/etc/slurm.conf slurmdbd
    wait_for 30 slurmdbd sacctmgr -n list cluster || die "slurmdbd did not start: $DIR/log/slurmdbd.log"
    sacctmgr -i -Q add cluster "$CLUSTER" >/dev/null 2>&1 || true
    slurmctld
    wait_for 30 slurmctld scontrol ping || die "slurmctld did not start: $DIR/log/slurmctld.log"
    slurmd -N "$NODE"
    # The node is usable once it is idle (registered, nothing running).
    wait_for 30 slurmd sh -c "sinfo -h -N -o %T | grep -qx idle" ||
        die "slurmd did not register: $DIR/log/slurmd.log, $DIR/log/slurmctld.log"
}

running() {
    local d
    for d in munged mariadbd slurmdbd slurmctld slurmd; do pid_of "$d" >/dev/null || return 1; done
    sinfo -h >/dev/null 2>&1
}

start() {
    if running; then
        say "already running ($DIR)"
    else
        stop  # whatever half-started cluster is left, then a fresh one
        install_packages
        configure
        start_munge
        start_mariadb
        start_slurm
        say "up: node $NODE, $CPUS CPUs advertised, partition ci ($DIR)"
    fi
    echo "export SLURM_CONF=$SLURM_CONF"
}

stop() {
    [ -d "$DIR/run" ] || return 0
    if pid_of slurmctld >/dev/null; then
        # Cancel jobs first: a job's slurmstepd outlives slurmd, so jobs must end while it runs.
        scancel --full --quiet --partition=ci 2>/dev/null || true
        if ! wait_for 30 "jobs to end" sh -c '[ -z "$(squeue -h -o %i)" ]'; then
            say "jobs still listed after scancel: $(squeue -h -o %i | tr '\n' ' ')"
        fi
    fi
    if pid_of slurmd >/dev/null; then
        # Any job step process that is still there (scontrol listpids: this node's steps only).
        local pids
        pids=$(scontrol listpids 2>/dev/null | awk 'NR > 1 && $1 ~ /^[0-9]+$/ {print $1}' || true)
        [ -n "$pids" ] && kill -KILL $pids 2>/dev/null || true
    fi
    stop_daemons slurmd
    stop_daemons slurmctld slurmdbd
    stop_daemons mariadbd munged
}

case "${1:-}" in
    start) start ;;
    stop) stop; say "stopped" ;;
    status) running ;;
    *) die "usage: $0 start|stop|status" ;;
esac
