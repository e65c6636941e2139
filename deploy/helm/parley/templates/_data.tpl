{{/* Data of the settings ConfigMap (also copied into the migrate hook's own ConfigMap). */}}
{{- define "parley.configData" -}}
{{- $v := .Values }}
{{- $env := dict
  "PARLEY_MODE" "cluster"
  "PARLEY_HOST" "0.0.0.0"
  "PARLEY_METRICS_PORT" (toString $v.metrics.port)
  "PARLEY_TRUSTED_PROXIES" $v.trustedProxies
  "PARLEY_JWT_ALGORITHM" $v.auth.algorithm
  "PARLEY_JWT_AUDIENCE" $v.auth.audience
  "PARLEY_JWT_ISSUER" $v.auth.issuer
  "PARLEY_REDIS_URL" (include "parley.redisUrl" .)
  "PARLEY_REDIS_PREFIX" $v.redis.prefix
  "PARLEY_REDIS_USERNAME" $v.redis.username
  "PARLEY_REDIS_TLS" (toString $v.redis.tls)
  "PARLEY_REDIS_TLS_CA_FILE" $v.redis.tlsCaFile
  "PARLEY_KAFKA_BOOTSTRAP" (include "parley.kafkaBootstrap" .)
  "PARLEY_KAFKA_TOPIC" $v.kafka.topic
  "PARLEY_KAFKA_PARTITIONS" (toString $v.kafka.partitions)
  "PARLEY_KAFKA_REPLICATION" (toString (ternary 1 $v.kafka.replication $v.dev.enabled))
  "PARLEY_KAFKA_GROUP" $v.kafka.group
  "PARLEY_KAFKA_SECURITY_PROTOCOL" $v.kafka.securityProtocol
  "PARLEY_KAFKA_SASL_MECHANISM" $v.kafka.saslMechanism
  "PARLEY_KAFKA_USERNAME" $v.kafka.username
  "PARLEY_KAFKA_TLS_CA_FILE" $v.kafka.tlsCaFile
  "PARLEY_CASSANDRA_HOSTS" (include "parley.cassandraHosts" .)
  "PARLEY_CASSANDRA_PORT" (toString (ternary 9042 $v.cassandra.port $v.dev.enabled))
  "PARLEY_CASSANDRA_KEYSPACE" $v.cassandra.keyspace
  "PARLEY_CASSANDRA_REPLICATION" (ternary "{'class': 'SimpleStrategy', 'replication_factor': 1}" $v.cassandra.replication $v.dev.enabled)
  "PARLEY_CASSANDRA_USERNAME" $v.cassandra.username
  "PARLEY_CASSANDRA_TLS" (toString $v.cassandra.tls)
  "PARLEY_CASSANDRA_TLS_CA_FILE" $v.cassandra.tlsCaFile
  "PARLEY_DRAIN_SECONDS" (toString $v.gateway.drain.seconds)
  "PARLEY_DRAIN_DISCONNECT_SECONDS" (toString $v.gateway.drain.disconnectSeconds)
}}
{{- range $k, $val := $v.config }}
{{- $_ := set $env $k (toString $val) }}
{{- end }}
{{- range $k := keys $env | sortAlpha }}
{{ $k }}: {{ get $env $k | quote }}
{{- end }}
{{- end }}

{{/* Data of the chart's Secret (also copied for the migrate hook). */}}
{{- define "parley.secretData" -}}
{{- $v := .Values }}
{{- $s := dict
  "PARLEY_JWT_SECRET" $v.auth.jwtSecret
  "PARLEY_JWT_PUBLIC_KEY" $v.auth.jwtPublicKey
  "PARLEY_JWT_PRIVATE_KEY" $v.auth.jwtPrivateKey
  "PARLEY_ENCRYPTION_KEYS" $v.secrets.encryptionKeys
  "PARLEY_ADMIN_UI_PASSWORD" $v.secrets.adminUiPassword
  "PARLEY_REDIS_PASSWORD" $v.secrets.redisPassword
  "PARLEY_KAFKA_PASSWORD" $v.secrets.kafkaPassword
  "PARLEY_CASSANDRA_PASSWORD" $v.secrets.cassandraPassword
}}
{{- range $k := keys $s | sortAlpha }}
{{- with get $s $k }}
{{ $k }}: {{ . | b64enc | quote }}
{{- end }}
{{- end }}
{{- end }}
