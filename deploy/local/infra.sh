#!/usr/bin/env bash
# Parley local infra — infra.sh
#
# Owns: starting, stopping and reporting the project's private Redis, Kafka (KRaft,
# one combined broker+controller) and Cassandra 5.0, as plain processes bound to
# 127.0.0.1, with all their state under ${PARLEY_RUN_DIR:-<repo>/.run}:
#   .run/<engine>/         config we generate + the engine's data
#   .run/logs/<engine>.log the engine's log (previous run kept as <engine>.log.1)
#   .run/pids/<engine>.pid the pid of the process we started
# Binaries / jars come from bootstrap.sh (run automatically by `up`).
#
# Usage: infra.sh up     [redis|kafka|cassandra ...]   (default: all three)
#        infra.sh down   [redis|kafka|cassandra ...]
#        infra.sh status [redis|kafka|cassandra ...]
#
# Ports (env, defaults): PARLEY_REDIS_PORT=16379 PARLEY_KAFKA_PORT=19092
#   PARLEY_KAFKA_CONTROLLER_PORT=19093 PARLEY_CASSANDRA_PORT=19042
#   PARLEY_CASSANDRA_STORAGE_PORT=17000
#   PARLEY_REDIS_TLS_PORT=16380 PARLEY_KAFKA_SASL_PORT=19094 (0: that listener is off)
#
# Engine trust (secured listeners beside the plaintext ones, which stay as they are):
#   Redis also listens with TLS on PARLEY_REDIS_TLS_PORT and has an ACL user `parley`
#   (the `default` user is unchanged); Kafka also has a SASL_SSL listener (SCRAM-SHA-512,
#   user `parley`) on PARLEY_KAFKA_SASL_PORT. Made once under the run dir:
#   .run/tls/                 a local CA (ca.pem) and the engines' certificate (localhost, 127.0.0.1)
#   .run/secrets/<engine>-password  the `parley` user's password (mode 600)
#   .run/<engine>/trust.env   PARLEY_* settings for a client of the secured listener (written on
#                             each start with it, removed by `down`)
# Other env: PARLEY_JAVA (a Java 17 binary; default: detected), PARLEY_CACHE_DIR.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
RUN_DIR="${PARLEY_RUN_DIR:-$REPO/.run}"
HOME="${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}"   # CI may run without HOME
CACHE_DIR="${PARLEY_CACHE_DIR:-$HOME/.cache/parley}"
JAR_DIR="$CACHE_DIR/jars"

REDIS_PORT="${PARLEY_REDIS_PORT:-16379}"
KAFKA_PORT="${PARLEY_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${PARLEY_KAFKA_CONTROLLER_PORT:-19093}"
CASSANDRA_PORT="${PARLEY_CASSANDRA_PORT:-19042}"
CASSANDRA_STORAGE_PORT="${PARLEY_CASSANDRA_STORAGE_PORT:-17000}"
REDIS_TLS_PORT="${PARLEY_REDIS_TLS_PORT:-16380}"
KAFKA_SASL_PORT="${PARLEY_KAFKA_SASL_PORT:-19094}"
TRUST_USER=parley

ALL_ENGINES=(redis kafka cassandra)
JAVA=""

log() { echo "[infra] $*"; }
die() { echo "[infra] ERROR: $*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# --- helpers: paths, processes, ports ------------------------------------------

engine_dir() { echo "$RUN_DIR/$1"; }
pid_file()   { echo "$RUN_DIR/pids/$1.pid"; }
log_file()   { echo "$RUN_DIR/logs/$1.log"; }

engine_port() {
  case "$1" in
    redis) echo "$REDIS_PORT" ;;
    kafka) echo "$KAFKA_PORT" ;;
    cassandra) echo "$CASSANDRA_PORT" ;;
  esac
}

# Every port an engine binds (checked to be free before a start).
engine_ports() {
  case "$1" in
    redis) echo "$REDIS_PORT"; [[ $REDIS_TLS_PORT == 0 ]] || echo "$REDIS_TLS_PORT" ;;
    kafka) echo "$KAFKA_PORT $KAFKA_CONTROLLER_PORT"; [[ $KAFKA_SASL_PORT == 0 ]] || echo "$KAFKA_SASL_PORT" ;;
    cassandra) echo "$CASSANDRA_PORT $CASSANDRA_STORAGE_PORT" ;;
  esac
}

stop_timeout() {
  case "$1" in
    redis) echo 10 ;;
    kafka) echo 30 ;;
    cassandra) echo 60 ;;
  esac
}

ready_timeout() {
  case "$1" in
    redis) echo 20 ;;
    kafka) echo 90 ;;
    cassandra) echo 180 ;;
  esac
}

port_open() { timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# Prints the pid if the pid file names a live process that we started (its working
# directory is the engine's run dir — this also guards against pid reuse).
# Removes a stale pid file.
running_pid() {
  local engine="$1" f pid cwd
  f="$(pid_file "$engine")"
  [[ -f $f ]] || return 1
  pid="$(cat "$f" 2>/dev/null || true)"
  if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
    cwd="$(readlink "/proc/$pid/cwd" 2>/dev/null || true)"
    if [[ $cwd == "$(engine_dir "$engine")" ]]; then
      echo "$pid"
      return 0
    fi
  fi
  log "$engine: removing stale pid file ($f, pid ${pid:-?})" >&2
  rm -f "$f"
  return 1
}

# Launches "$@" detached (own session, stdin closed, output to the engine log)
# from the engine's dir; the pid file is written by the process itself.
launch() {
  local engine="$1"; shift
  local pidf logf
  pidf="$(pid_file "$engine")"
  logf="$(log_file "$engine")"
  rm -f "$pidf"
  [[ -f $logf ]] && mv -f "$logf" "$logf.1"
  (
    cd "$(engine_dir "$engine")"
    exec 8>&-   # do not hand our lock to the engine
    # shellcheck disable=SC2016  # $$ and $@ belong to the inner bash
    exec setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidf" "$@"
  ) >>"$logf" 2>&1 </dev/null &
  for _ in $(seq 50); do
    [[ -s $pidf ]] && return 0
    sleep 0.1
  done
  die "$engine: process did not start (see $logf)"
}

show_log_tail() {
  local engine="$1" logf
  logf="$(log_file "$engine")"
  echo "----- last 30 lines of $logf -----" >&2
  tail -n 30 "$logf" >&2 2>/dev/null || echo "(no log)" >&2
  echo "----- end of $logf -----" >&2
}

# --- Java --------------------------------------------------------------------

java_major() {
  "$1" -version 2>&1 | awk -F'"' '/version/ { split($2, v, "."); print (v[1] == "1" ? v[2] : v[1]); exit }'
}

find_java() {
  local j cands=()
  if [[ -n ${PARLEY_JAVA:-} ]]; then
    [[ -x $PARLEY_JAVA ]] || die "PARLEY_JAVA=$PARLEY_JAVA is not executable"
    j="$(java_major "$PARLEY_JAVA")"
    [[ $j == 17 ]] || log "WARNING: PARLEY_JAVA is Java $j; Cassandra 5.0 runs on Java 11/17 only" >&2
    echo "$PARLEY_JAVA"; return 0
  fi
  if command -v update-alternatives >/dev/null 2>&1; then
    mapfile -t cands < <(update-alternatives --list java 2>/dev/null || true)
  fi
  cands+=(/usr/lib/jvm/*/bin/java)
  for j in "${cands[@]}"; do
    [[ -x $j ]] || continue
    if [[ "$(java_major "$j")" == 17 ]]; then echo "$j"; return 0; fi
  done
  die "no Java 17 found (update-alternatives --list java; /usr/lib/jvm). Cassandra 5.0 needs Java 11/17: apt-get install openjdk-17-jre-headless, or set PARLEY_JAVA"
}

need_jars() {
  local name="$1"
  [[ -f $JAR_DIR/$name/.complete ]] || die "$name jars missing in $JAR_DIR/$name (run deploy/local/bootstrap.sh $name)"
}

# --- engine trust: local CA, server certificate, passwords -----------------------

tls_dir() { echo "$RUN_DIR/tls"; }
trust_env_file() { echo "$(engine_dir "$1")/trust.env"; }

# A local CA and one server certificate (localhost, 127.0.0.1) signed by it, made once; the
# server certificate is made again when it expires within a day. Kafka reads a PEM keystore
# (key + chain in one file).
tls_ensure() {
  local d ext
  d="$(tls_dir)"
  mkdir -p "$d"
  chmod 700 "$d"
  if [[ ! -s $d/ca.pem || ! -s $d/ca.key ]]; then
    log "tls: making a local CA in $d"
    openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 3650 \
      -keyout "$d/ca.key" -out "$d/ca.pem" -subj "/CN=Parley local development CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -addext "subjectKeyIdentifier=hash" >"$d/openssl.log" 2>&1 \
      || { cat "$d/openssl.log" >&2; die "tls: openssl could not make the CA"; }
    rm -f "$d/server.pem"
  fi
  if [[ -s $d/server.pem && -s $d/server.key && -s $d/kafka-keystore.pem ]] \
      && openssl x509 -in "$d/server.pem" -noout -checkend 86400 >/dev/null 2>&1; then
    return 0
  fi
  log "tls: making the engines' certificate (localhost, 127.0.0.1) in $d"
  ext="$d/server.ext"
  cat >"$ext" <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid,issuer
EOF
  { openssl req -new -newkey rsa:2048 -nodes -sha256 -keyout "$d/server.key" -out "$d/server.csr" \
      -subj "/CN=localhost" \
    && openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -sha256 -days 825 \
      -set_serial "0x$(openssl rand -hex 16)" -extfile "$ext" -out "$d/server.pem"
  } >"$d/openssl.log" 2>&1 || { cat "$d/openssl.log" >&2; die "tls: openssl could not make the certificate"; }
  (umask 077; cat "$d/server.key" "$d/server.pem" "$d/ca.pem" >"$d/kafka-keystore.pem")
  chmod 600 "$d"/*.key
  rm -f "$d/server.csr"
}

# The `parley` user's password for an engine, generated once (letters and digits only, so it
# needs no quoting in any config format).
trust_password() {
  local f="$RUN_DIR/secrets/$1-password"
  if [[ ! -s $f ]]; then
    mkdir -p "$RUN_DIR/secrets"
    chmod 700 "$RUN_DIR/secrets"
    (umask 077; head -c 64 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32 >"$f")
  fi
  cat "$f"
}

# --- Redis -------------------------------------------------------------------

redis_ready() {
  [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]
}

# The TLS listener and the ACL user, in a config file (the password stays off the command
# line); the plaintext port and the `default` user are as before.
redis_write_trust_config() {
  local dir="$1" t pw
  rm -f "$dir/trust.conf" "$(trust_env_file redis)"
  (umask 077; : >"$dir/trust.conf")
  [[ $REDIS_TLS_PORT == 0 ]] && return 0
  tls_ensure
  t="$(tls_dir)"
  pw="$(trust_password redis)"
  cat >"$dir/trust.conf" <<EOF
# Generated by deploy/local/infra.sh on every start — edit the script, not this file.
tls-port $REDIS_TLS_PORT
tls-cert-file $t/server.pem
tls-key-file $t/server.key
tls-ca-cert-file $t/ca.pem
tls-auth-clients no
user $TRUST_USER on >$pw ~* &* +@all -@dangerous
EOF
  (umask 077; cat >"$(trust_env_file redis)" <<EOF
PARLEY_REDIS_URL=rediss://127.0.0.1:$REDIS_TLS_PORT/0
PARLEY_REDIS_USERNAME=$TRUST_USER
PARLEY_REDIS_PASSWORD=$pw
PARLEY_REDIS_TLS=true
PARLEY_REDIS_TLS_CA_FILE=$t/ca.pem
EOF
  )
}

redis_start() {
  mkdir -p "$(engine_dir redis)"
  redis_write_trust_config "$(engine_dir redis)"
  launch redis "$(command -v redis-server)" "$(engine_dir redis)/trust.conf" \
    --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --daemonize no --dir "$(engine_dir redis)" --logfile ""
}

# --- Kafka -------------------------------------------------------------------

kafka_ready() {
  grep -q "Kafka Server started" "$(log_file kafka)" 2>/dev/null && port_open "$KAFKA_PORT"
}

kafka_write_config() {
  local dir="$1" listeners advertised protomap
  listeners="PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT"
  advertised="PLAINTEXT://127.0.0.1:$KAFKA_PORT"
  protomap="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
  if [[ $KAFKA_SASL_PORT != 0 ]]; then
    listeners+=",SASL_SSL://127.0.0.1:$KAFKA_SASL_PORT"
    advertised+=",SASL_SSL://127.0.0.1:$KAFKA_SASL_PORT"
    protomap+=",SASL_SSL:SASL_SSL"
  fi
  cat >"$dir/server.properties" <<EOF
# Generated by deploy/local/infra.sh on every start — edit the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=$listeners
advertised.listeners=$advertised
listener.security.protocol.map=$protomap
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data

# single node: every replication factor / ISR is 1
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1

auto.create.topics.enable=true
group.initial.rebalance.delay.ms=0

# small box
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
background.threads=4
log.cleaner.threads=1
EOF
  rm -f "$(trust_env_file kafka)"
  if [[ $KAFKA_SASL_PORT != 0 ]]; then
    tls_ensure
    cat >>"$dir/server.properties" <<EOF

# engine trust: SASL_SSL with SCRAM-SHA-512 (user $TRUST_USER, made after start by infra.sh);
# no client certificates; the plaintext listener above is unchanged
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$(tls_dir)/kafka-keystore.pem
listener.name.sasl_ssl.ssl.client.auth=none
EOF
  fi
  cat >"$dir/log4j.properties" <<'EOF'
# Generated by deploy/local/infra.sh. stdout is redirected to .run/logs/kafka.log.
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n

# noisy at INFO (keep "Kafka Server started" from kafka.server.KafkaRaftServer)
log4j.logger.kafka.server=WARN
log4j.logger.kafka.server.KafkaRaftServer=INFO
log4j.logger.kafka.server.KafkaConfig=WARN
log4j.logger.kafka.log=WARN
log4j.logger.kafka.raft=WARN
log4j.logger.kafka.coordinator.transaction=WARN
log4j.logger.org.apache.zookeeper=WARN
log4j.logger.org.apache.kafka.common.utils=WARN
log4j.logger.org.apache.kafka.common.config=WARN
log4j.logger.org.apache.kafka.common.metrics=WARN
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.network=WARN
log4j.logger.kafka.utils.Log4jControllerRegistration$=WARN
log4j.logger.org.apache.kafka.storage.internals.log=WARN
log4j.logger.org.apache.kafka.raft=WARN
log4j.logger.org.apache.kafka.snapshot=WARN
log4j.logger.org.apache.kafka.image=WARN
log4j.logger.org.apache.kafka.metadata=WARN
log4j.logger.org.apache.kafka.controller=WARN
log4j.logger.kafka.cluster.Partition=WARN
log4j.logger.org.apache.kafka.server=WARN
log4j.logger.org.apache.kafka.queue=WARN
EOF
}

# Formats the KRaft storage once; the cluster id is kept in the data dir.
kafka_format() {
  local dir="$1" cid_file="$1/data/cluster.id" cid
  [[ -f $dir/data/meta.properties ]] && return 0
  mkdir -p "$dir/data"
  if [[ -s $cid_file ]]; then
    cid="$(cat "$cid_file")"
  else
    # 16 random bytes, URL-safe base64 without padding; may not start with '-'.
    cid="-"
    while [[ $cid == -* ]]; do
      cid="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    done
    echo "$cid" >"$cid_file"
  fi
  log "kafka: formatting KRaft storage (cluster id $cid)"
  if ! "$JAVA" -Xmx256m -Dlog4j.configuration="file:$dir/log4j.properties" \
        -cp "$JAR_DIR/kafka/*" kafka.tools.StorageTool format \
        -t "$cid" -c "$dir/server.properties" --ignore-formatted >"$dir/format.log" 2>&1; then
    cat "$dir/format.log" >&2
    die "kafka: storage format failed (log: $dir/format.log)"
  fi
}

kafka_start() {
  local dir
  dir="$(engine_dir kafka)"
  need_jars kafka
  mkdir -p "$dir/data"
  kafka_write_config "$dir"
  kafka_format "$dir"
  launch kafka "$JAVA" -Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true \
    -Djava.io.tmpdir="$dir" \
    -Dlog4j.configuration="file:$dir/log4j.properties" -Dkafka.logs.dir="$RUN_DIR/logs" \
    -cp "$JAR_DIR/kafka/*" kafka.Kafka "$dir/server.properties"
}

# After Kafka is ready: the SCRAM credentials of the `parley` user (kept in the KRaft metadata,
# so made once per data dir and password: a marker in the data dir remembers them), then the
# trust.env for clients. Kafka's ConfigCommand over the plaintext listener; retried, since the
# first metadata writes can race the broker's start.
kafka_trust_ensure() {
  local dir pw marker sum cfg attempt
  [[ $KAFKA_SASL_PORT == 0 ]] && return 0
  dir="$(engine_dir kafka)"
  if ! grep -q "^listeners=.*SASL_SSL://127.0.0.1:$KAFKA_SASL_PORT" "$dir/server.properties" 2>/dev/null; then
    log "kafka: running without the SASL_SSL listener on $KAFKA_SASL_PORT (started by an older infra.sh or other ports) — restart it to get it"
    return 0
  fi
  pw="$(trust_password kafka)"
  marker="$dir/data/.scram-$TRUST_USER"
  sum="$(printf '%s' "$pw" | sha256sum | cut -d' ' -f1)"
  if [[ "$(cat "$marker" 2>/dev/null)" != "$sum" ]]; then
    [[ -n $JAVA ]] || JAVA="$(find_java)"
    cfg="$dir/scram.properties"
    # (a file, so the password stays off the command line; no [brackets] in a file)
    (umask 077; echo "SCRAM-SHA-512=password=$pw" >"$cfg")
    for attempt in 1 2 3 4 5; do
      if "$JAVA" -Xmx128m -Dlog4j.configuration="file:$dir/log4j.properties" \
          -cp "$JAR_DIR/kafka/*" kafka.admin.ConfigCommand \
          --bootstrap-server "127.0.0.1:$KAFKA_PORT" --alter --entity-type users \
          --entity-name "$TRUST_USER" --add-config-file "$cfg" >"$dir/scram.log" 2>&1; then
        echo "$sum" >"$marker"
        log "kafka: SCRAM-SHA-512 credentials of user $TRUST_USER set"
        break
      fi
      sleep "$attempt"
    done
    rm -f "$cfg"
    if [[ "$(cat "$marker" 2>/dev/null)" != "$sum" ]]; then
      grep -v -e '^[[:space:]]' -e ' INFO ' "$dir/scram.log" | sed "s/$pw/<password>/g" | tail -n 20 >&2
      die "kafka: could not set the SCRAM credentials of $TRUST_USER (log: $dir/scram.log)"
    fi
  fi
  (umask 077; cat >"$(trust_env_file kafka)" <<EOF
PARLEY_KAFKA_BOOTSTRAP=127.0.0.1:$KAFKA_SASL_PORT
PARLEY_KAFKA_SECURITY_PROTOCOL=SASL_SSL
PARLEY_KAFKA_SASL_MECHANISM=SCRAM-SHA-512
PARLEY_KAFKA_USERNAME=$TRUST_USER
PARLEY_KAFKA_PASSWORD=$pw
PARLEY_KAFKA_TLS_CA_FILE=$(tls_dir)/ca.pem
EOF
  )
}

# --- Cassandra -------------------------------------------------------------------

cassandra_ready() {
  grep -q "Starting listening for CQL clients" "$(log_file cassandra)" 2>/dev/null \
    && port_open "$CASSANDRA_PORT"
}

cassandra_write_config() {
  local dir="$1"
  cat >"$dir/cassandra.yaml" <<EOF
# Generated by deploy/local/infra.sh on every start — edit the script, not this file.
# Cassandra 5.0 rejects unknown keys: check org.apache.cassandra.config.Config.
cluster_name: parley-local
num_tokens: 1
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
dynamic_snitch: false
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "127.0.0.1:$CASSANDRA_STORAGE_PORT"
listen_address: 127.0.0.1
rpc_address: 127.0.0.1
storage_port: $CASSANDRA_STORAGE_PORT
native_transport_port: $CASSANDRA_PORT
start_native_transport: true

# local only: no auth
authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
role_manager: CassandraRoleManager
network_authorizer: AllowAllNetworkAuthorizer

data_file_directories:
  - $dir/data/data
commitlog_directory: $dir/data/commitlog
hints_directory: $dir/data/hints
saved_caches_directory: $dir/data/saved_caches
cdc_raw_directory: $dir/data/cdc_raw
commitlog_sync: periodic
commitlog_sync_period: 10000ms
commitlog_segment_size: 16MiB
commitlog_total_space: 512MiB

# 2-core test box: few threads, small caches, nothing a single node does not need
concurrent_reads: 4
concurrent_writes: 4
concurrent_counter_writes: 4
concurrent_materialized_view_writes: 2
concurrent_compactors: 1
memtable_flush_writers: 1
native_transport_max_threads: 32
file_cache_size: 64MiB
networking_cache_size: 32MiB
key_cache_size: 16MiB
hinted_handoff_enabled: false
auto_snapshot: false
snapshot_before_compaction: false
incremental_backups: false
cdc_enabled: false
EOF

  cat >"$dir/logback.xml" <<'EOF'
<!-- Generated by deploy/local/infra.sh. stdout is redirected to .run/logs/cassandra.log. -->
<configuration scan="false">
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder>
      <pattern>%-5level [%thread] %date{ISO8601} %logger{1}:%L - %msg%n</pattern>
    </encoder>
  </appender>
  <!-- noisy at INFO; StorageService (version, ring state), StartupChecks and
       PipelineConfigurator ("Starting listening for CQL clients") stay at INFO -->
  <logger name="org.apache.cassandra.config" level="WARN"/>
  <logger name="org.apache.cassandra.db.ColumnFamilyStore" level="WARN"/>
  <logger name="org.apache.cassandra.db.Keyspace" level="WARN"/>
  <logger name="org.apache.cassandra.db.SystemKeyspace" level="WARN"/>
  <logger name="org.apache.cassandra.db.SystemKeyspaceMigrator41" level="WARN"/>
  <logger name="org.apache.cassandra.db.commitlog" level="WARN"/>
  <logger name="org.apache.cassandra.db.compaction" level="WARN"/>
  <logger name="org.apache.cassandra.db.lifecycle" level="WARN"/>
  <logger name="org.apache.cassandra.db.memtable" level="WARN"/>
  <logger name="org.apache.cassandra.io.sstable" level="WARN"/>
  <logger name="org.apache.cassandra.schema" level="WARN"/>
  <logger name="org.apache.cassandra.cql3.QueryProcessor" level="WARN"/>
  <logger name="org.apache.cassandra.cache.AutoSavingCache" level="WARN"/>
  <logger name="org.apache.cassandra.index.SecondaryIndexManager" level="WARN"/>
  <logger name="org.apache.cassandra.repair.consistent.LocalSessions" level="WARN"/>
  <logger name="org.apache.cassandra.security.AbstractCryptoProvider" level="WARN"/>
  <logger name="org.apache.cassandra.service.ActiveRepairService" level="WARN"/>
  <logger name="org.apache.cassandra.service.CacheService" level="WARN"/>
  <logger name="org.apache.cassandra.service.CassandraDaemon" level="WARN"/>
  <logger name="org.apache.cassandra.service.FileSystemOwnershipCheck" level="WARN"/>
  <logger name="org.apache.cassandra.service.NativeTransportService" level="WARN"/>
  <logger name="org.apache.cassandra.service.paxos" level="WARN"/>
  <logger name="org.apache.cassandra.service.snapshot.SnapshotManager" level="WARN"/>
  <logger name="org.apache.cassandra.streaming.StreamManager" level="WARN"/>
  <logger name="org.apache.cassandra.utils.MonotonicClock" level="WARN"/>
  <logger name="org.apache.cassandra.utils.SigarLibrary" level="WARN"/>
  <logger name="org.apache.cassandra.utils.memory.BufferPools" level="WARN"/>
  <logger name="com.datastax.shaded" level="WARN"/>
  <logger name="io.netty" level="WARN"/>
  <root level="INFO">
    <appender-ref ref="STDOUT"/>
  </root>
</configuration>
EOF

  # The flags of Cassandra's conf/jvm17-server.options (Java 17 module access).
  local opens=(java.base/java.lang.module java.base/jdk.internal.loader java.base/jdk.internal.ref
    java.base/jdk.internal.reflect java.base/jdk.internal.math java.base/jdk.internal.module
    java.base/jdk.internal.util.jar jdk.management/com.sun.management.internal java.base/sun.nio.ch
    java.base/java.io java.base/java.lang.reflect jdk.compiler/com.sun.tools.javac java.base/java.lang
    java.base/java.util java.base/java.nio)
  local exports=(java.base/jdk.internal.misc java.base/java.lang.ref
    java.management.rmi/com.sun.jmx.remote.internal.rmi java.rmi/sun.rmi.registry
    java.rmi/sun.rmi.server java.sql/java.sql jdk.unsupported/sun.misc
    jdk.compiler/com.sun.tools.javac.file jdk.attach/sun.tools.attach
    java.management/com.sun.jmx.remote.security)
  local m
  {
    echo "-Djdk.attach.allowAttachSelf=true"
    echo "-Dio.netty.tryReflectionSetAccessible=true"
    for m in "${exports[@]}"; do echo "--add-exports=$m=ALL-UNNAMED"; done
    for m in "${opens[@]}"; do echo "--add-opens=$m=ALL-UNNAMED"; done
  } >"$dir/jvm17.options"
}

cassandra_start() {
  local dir jamms agent=()
  dir="$(engine_dir cassandra)"
  need_jars cassandra
  mkdir -p "$dir/data" "$dir/tmp"
  cassandra_write_config "$dir"
  # jamm measures object sizes for memtable accounting (Cassandra's own scripts load it too)
  jamms=("$JAR_DIR"/cassandra/jamm-*.jar)
  [[ -f ${jamms[0]} ]] && agent=("-javaagent:${jamms[0]}")
  launch cassandra "$JAVA" "@$dir/jvm17.options" \
    -ea -da:net.openhft... -XX:+UseG1GC -XX:MaxGCPauseMillis=300 -Xms1g -Xmx1g -Xss256k \
    -XX:+UseThreadPriorities -XX:+HeapDumpOnOutOfMemoryError -XX:HeapDumpPath="$dir/tmp" \
    -XX:+PerfDisableSharedMem -XX:+CrashOnOutOfMemoryError \
    -Djava.net.preferIPv4Stack=true -Djava.io.tmpdir="$dir/tmp" \
    "${agent[@]}" \
    -Dcassandra.config="file://$dir/cassandra.yaml" \
    -Dcassandra.storagedir="$dir/data" -Dcassandra.logdir="$RUN_DIR/logs" \
    -Dcassandra-foreground=yes -Dlogback.configurationFile="$dir/logback.xml" \
    -Dcassandra.skip_wait_for_gossip_to_settle=0 -Dcassandra.ring_delay_ms=1000 \
    -Dcassandra.superuser_setup_delay_ms=0 -Dcassandra.shutdown_announce_in_ms=100 \
    -cp "$JAR_DIR/cassandra/*" org.apache.cassandra.service.CassandraDaemon
}

# --- commands ----------------------------------------------------------------

stop_engine_now() {
  local engine="$1" pid
  pid="$(running_pid "$engine" 2>/dev/null)" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  wait_gone "$engine" "$pid"
}

# Waits for pid to exit; SIGKILL after the engine's stop timeout.
wait_gone() {
  local engine="$1" pid="$2" deadline
  deadline=$(( SECONDS + $(stop_timeout "$engine") ))
  while kill -0 "$pid" 2>/dev/null; do
    if (( SECONDS >= deadline )); then
      log "$engine: still running after $(stop_timeout "$engine")s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.2
  done
  rm -f "$(pid_file "$engine")"
}

# One readiness check. Returns 0 = ready (reported), 1 = not yet, 2 = failed (reported).
check_ready() {
  local engine="$1" t0="$2" limit
  limit="$(ready_timeout "$engine")"
  if "${engine}_ready"; then
    log "$engine: ready on 127.0.0.1:$(engine_port "$engine") (pid $(cat "$(pid_file "$engine")"), $(elapsed "$t0")s)"
    return 0
  fi
  if ! running_pid "$engine" >/dev/null 2>&1; then
    echo "[infra] ERROR: $engine exited during start-up (log: $(log_file "$engine"))" >&2
    show_log_tail "$engine"
    return 2
  fi
  if awk -v a="$t0" -v b="$(now)" -v l="$limit" 'BEGIN { exit !(b - a > l) }'; then
    echo "[infra] ERROR: $engine not ready after ${limit}s — stopping it (log: $(log_file "$engine"))" >&2
    show_log_tail "$engine"
    stop_engine_now "$engine"
    return 2
  fi
  return 1
}

# Polls all starting engines together (so each one's start time is measured
# exactly); returns non-zero if any failed. Args: pairs "engine t0".
wait_all_ready() {
  local pending=("$@") next i rc failed=0
  while [[ ${#pending[@]} -gt 0 ]]; do
    next=()
    for (( i = 0; i < ${#pending[@]}; i += 2 )); do
      rc=0
      check_ready "${pending[i]}" "${pending[i+1]}" || rc=$?
      case $rc in
        1) next+=("${pending[i]}" "${pending[i+1]}") ;;
        2) failed=1 ;;
      esac
    done
    pending=("${next[@]+"${next[@]}"}")
    [[ ${#pending[@]} -gt 0 ]] && sleep 0.25
  done
  return $failed
}

cmd_up() {
  local engines=("$@") e p pid t0 waiting=()
  "$HERE/bootstrap.sh" "${engines[@]}"
  mkdir -p "$RUN_DIR/pids" "$RUN_DIR/logs"
  for e in "${engines[@]}"; do
    if [[ $e != redis && -z $JAVA ]]; then JAVA="$(find_java)"; fi
  done

  # Slowest first, so Cassandra and Kafka boot in parallel while the rest is set up.
  for e in cassandra kafka redis; do
    [[ " ${engines[*]} " == *" $e "* ]] || continue
    if pid="$(running_pid "$e")"; then
      if "${e}_ready"; then
        log "$e: already running (pid $pid, port $(engine_port "$e")) — nothing to do"
      else
        log "$e: running (pid $pid) but not answering yet — waiting"
        waiting+=("$e" "$(now)")
      fi
      continue
    fi
    for p in $(engine_ports "$e"); do
      port_open "$p" && die "$e: port $p on 127.0.0.1 is taken by a process infra.sh did not start (set PARLEY_*_PORT or stop it)"
    done
    t0="$(now)"
    log "$e: starting (log: $(log_file "$e"))"
    "${e}_start"
    waiting+=("$e" "$t0")
  done

  if [[ ${#waiting[@]} -gt 0 ]]; then
    wait_all_ready "${waiting[@]}" || die "start-up failed (see above)"
  fi
  if [[ " ${engines[*]} " == *" kafka "* ]]; then kafka_trust_ensure; fi
}

cmd_down() {
  local engines=("$@") e pid stopping=() pids=() i
  for e in "${engines[@]}"; do
    if pid="$(running_pid "$e")"; then
      log "$e: stopping (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      stopping+=("$e"); pids+=("$pid")
    else
      log "$e: not running"
    fi
  done
  for i in "${!stopping[@]}"; do
    wait_gone "${stopping[$i]}" "${pids[$i]}"
    log "${stopping[$i]}: stopped"
  done
  for e in "${engines[@]}"; do rm -f "$(trust_env_file "$e")"; done
}

cmd_status() {
  local e pid state
  for e in "$@"; do
    if pid="$(running_pid "$e")"; then
      if "${e}_ready"; then state="running"; else state="running (not answering yet)"; fi
      printf '%-10s %-28s pid %-8s port %s\n' "$e" "$state" "$pid" "$(engine_port "$e")"
    else
      printf '%-10s %-28s pid %-8s port %s\n' "$e" "stopped" "-" "$(engine_port "$e")"
    fi
  done
}

usage() {
  echo "usage: $0 up|down|status [redis|kafka|cassandra ...]" >&2
  exit 2
}

main() {
  [[ $# -ge 1 ]] || usage
  local cmd="$1" e; shift
  local engines=("$@")
  [[ ${#engines[@]} -eq 0 ]] && engines=("${ALL_ENGINES[@]}")
  for e in "${engines[@]}"; do
    [[ " ${ALL_ENGINES[*]} " == *" $e "* ]] || die "unknown engine '$e' (expected: ${ALL_ENGINES[*]})"
  done
  mkdir -p "$RUN_DIR"
  RUN_DIR="$(cd "$RUN_DIR" && pwd -P)"
  if [[ $cmd == up || $cmd == down ]]; then
    # One up/down at a time per run dir (parallel test runs, make -j).
    exec 8>"$RUN_DIR/.lock"
    flock 8
  fi
  case "$cmd" in
    up) cmd_up "${engines[@]}" ;;
    down) cmd_down "${engines[@]}" ;;
    status) cmd_status "${engines[@]}" ;;
    *) usage ;;
  esac
}

main "$@"
