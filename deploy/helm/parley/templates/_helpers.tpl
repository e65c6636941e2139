{{/* Names, labels, images and the checks that stop a render with a clear message. */}}

{{- define "parley.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "parley.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* "<fullname>-<component>", at most 63 characters. Call with (list $ "gateway"). */}}
{{- define "parley.componentName" -}}
{{- $ := index . 0 -}}
{{- printf "%s-%s" (include "parley.fullname" $ | trunc (int (sub 62 (len (index . 1))))) (index . 1) | trimSuffix "-" }}
{{- end }}

{{- define "parley.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: immutable once a Deployment exists, so they never carry versions. */}}
{{- define "parley.selectorLabels" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: {{ include "parley.name" $ }}
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "parley.labels" -}}
{{- $ := index . 0 -}}
helm.sh/chart: {{ include "parley.chart" $ }}
{{ include "parley.selectorLabels" . }}
app.kubernetes.io/version: {{ $.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: parley
app.kubernetes.io/managed-by: {{ $.Release.Service }}
{{- with $.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "parley.image" -}}
{{- $img := .Values.image }}
{{- if $img.digest }}
{{- printf "%s@%s" $img.repository $img.digest }}
{{- else }}
{{- printf "%s:%s" $img.repository (default .Chart.AppVersion $img.tag) }}
{{- end }}
{{- end }}

{{- define "parley.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "parley.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "parley.secretName" -}}
{{- default (include "parley.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{/* Engine addresses: the in-cluster dev engines when dev.enabled, else the configured ones. */}}
{{- define "parley.redisUrl" -}}
{{- if .Values.dev.enabled }}
{{- printf "redis://%s:6379/0" (include "parley.componentName" (list . "redis")) }}
{{- else }}
{{- .Values.redis.url }}
{{- end }}
{{- end }}

{{- define "parley.kafkaBootstrap" -}}
{{- if .Values.dev.enabled }}
{{- printf "%s:9092" (include "parley.componentName" (list . "kafka")) }}
{{- else }}
{{- .Values.kafka.bootstrap }}
{{- end }}
{{- end }}

{{- define "parley.cassandraHosts" -}}
{{- if .Values.dev.enabled }}
{{- include "parley.componentName" (list . "cassandra") }}
{{- else }}
{{- .Values.cassandra.hosts }}
{{- end }}
{{- end }}

{{/* Gateway grace period: preStop + drain + disconnect + margin unless overridden. */}}
{{- define "parley.gatewayGrace" -}}
{{- $d := .Values.gateway.drain }}
{{- $need := add $d.preStopSeconds $d.seconds $d.disconnectSeconds }}
{{- $grace := .Values.gateway.terminationGracePeriodSeconds | int }}
{{- if eq $grace 0 }}
{{- add $need $d.shutdownMarginSeconds }}
{{- else if lt $grace (int $need) }}
{{- fail (printf "gateway.terminationGracePeriodSeconds=%d is shorter than preStop (%v) + drain.seconds (%v) + drain.disconnectSeconds (%v) = %v: pods would be killed mid-drain" $grace $d.preStopSeconds $d.seconds $d.disconnectSeconds $need) }}
{{- else }}
{{- $grace }}
{{- end }}
{{- end }}

{{/* Checks the schema cannot express; each stops the render naming the value to change. */}}
{{- define "parley.validate" -}}
{{- $v := .Values }}
{{- if not $v.secrets.existingSecret }}
{{- if eq $v.auth.algorithm "HS256" }}
{{- if not $v.auth.jwtSecret }}
{{- fail "A JWT secret is required: set secrets.existingSecret to a Secret holding PARLEY_JWT_SECRET (production), or auth.jwtSecret (at least 32 bytes) to try the chart. Generate one with: openssl rand -base64 48" }}
{{- else if lt (len $v.auth.jwtSecret) 32 }}
{{- fail (printf "auth.jwtSecret is %d bytes; Parley refuses HS256 secrets shorter than 32 bytes" (len $v.auth.jwtSecret)) }}
{{- else if eq $v.auth.jwtSecret "parley-dev-secret-change-me-in-production" }}
{{- fail "auth.jwtSecret is the old public development default; generate your own: openssl rand -base64 48" }}
{{- end }}
{{- else if not $v.auth.jwtPublicKey }}
{{- fail "auth.algorithm=RS256 needs auth.jwtPublicKey (or secrets.existingSecret holding PARLEY_JWT_PUBLIC_KEY)" }}
{{- end }}
{{- end }}
{{- $secretKeys := list "PARLEY_JWT_SECRET" "PARLEY_JWT_PRIVATE_KEY" "PARLEY_JWT_PUBLIC_KEY" "PARLEY_ENCRYPTION_KEYS" "PARLEY_ADMIN_UI_PASSWORD" "PARLEY_REDIS_PASSWORD" "PARLEY_KAFKA_PASSWORD" "PARLEY_CASSANDRA_PASSWORD" "PARLEY_API_KEYS" "PARLEY_WEBHOOKS" }}
{{- range $where, $m := dict "config" $v.config "gateway.env" $v.gateway.env "persistence.env" $v.persistence.env "presence.env" $v.presence.env "webhooks.env" $v.webhooks.env }}
{{- range $k, $_ := $m }}
{{- if has $k $secretKeys }}
{{- fail (printf "%s.%s: a secret never goes into a ConfigMap or plain env; use auth.*/secrets.* or a Secret named in secrets.existingSecret" $where $k) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and $v.webhooks.enabled (not $v.webhooks.existingSecret) (not $v.secrets.existingSecret) }}
{{- fail "webhooks.enabled needs the endpoints in a Secret: set webhooks.existingSecret (a Secret with PARLEY_WEBHOOKS, given to the worker only) or put PARLEY_WEBHOOKS into secrets.existingSecret" }}
{{- end }}
{{- if gt (int $v.persistence.replicas) (int $v.kafka.partitions) }}
{{- fail (printf "persistence.replicas=%d is more than kafka.partitions=%d: the extra workers would sit idle in the consumer group" (int $v.persistence.replicas) (int $v.kafka.partitions)) }}
{{- end }}
{{- if and $v.gateway.autoscaling.enabled (gt (int $v.gateway.autoscaling.minReplicas) (int $v.gateway.autoscaling.maxReplicas)) }}
{{- fail (printf "gateway.autoscaling.minReplicas=%d is greater than maxReplicas=%d" (int $v.gateway.autoscaling.minReplicas) (int $v.gateway.autoscaling.maxReplicas)) }}
{{- end }}
{{- if eq (int $v.metrics.port) (int $v.gateway.port) }}
{{- fail "metrics.port must differ from gateway.port: /metrics is never served on the client port" }}
{{- end }}
{{- if and $v.httpRoute.enabled (not $v.httpRoute.parentRefs) }}
{{- fail "httpRoute.enabled needs httpRoute.parentRefs (the Gateway the route attaches to)" }}
{{- end }}
{{- end }}

{{/* Default topologySpreadConstraints: zones, then nodes, never blocking scheduling. */}}
{{- define "parley.spread" -}}
{{- $ := index . 0 -}}
{{- $w := index . 1 }}
{{- $component := index . 2 }}
{{- if $w.topologySpreadConstraints }}
{{- toYaml $w.topologySpreadConstraints }}
{{- else }}
- maxSkew: 1
  topologyKey: topology.kubernetes.io/zone
  whenUnsatisfiable: ScheduleAnyway
  labelSelector:
    matchLabels:
      {{- include "parley.selectorLabels" (list $ $component) | trim | nindent 6 }}
  matchLabelKeys: [pod-template-hash]
- maxSkew: 1
  topologyKey: kubernetes.io/hostname
  whenUnsatisfiable: ScheduleAnyway
  labelSelector:
    matchLabels:
      {{- include "parley.selectorLabels" (list $ $component) | trim | nindent 6 }}
  matchLabelKeys: [pod-template-hash]
{{- end }}
{{- end }}

{{/* The env every Parley container shares: ConfigMap + Secret, then the workload's own. */}}
{{- define "parley.envFrom" -}}
- configMapRef:
    name: {{ include "parley.fullname" . }}
- secretRef:
    name: {{ include "parley.secretName" . }}
{{- end }}

{{- define "parley.podSecurity" -}}
automountServiceAccountToken: false
serviceAccountName: {{ include "parley.serviceAccountName" . }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Volumes every Parley pod has: a writable /tmp (the root filesystem is read-only). */}}
{{- define "parley.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "parley.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* checksum/config: pods roll when the settings or the chart's Secret change. */}}
{{- define "parley.checksums" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- if not .Values.secrets.existingSecret }}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}
{{- end }}

{{/* Probes of a Parley container: liveness /healthz, readiness /readyz, startup /healthz. */}}
{{- define "parley.probes" -}}
livenessProbe:
  httpGet: {path: /healthz, port: http}
  {{- toYaml .liveness | nindent 2 }}
readinessProbe:
  httpGet: {path: /readyz, port: http}
  {{- toYaml .readiness | nindent 2 }}
startupProbe:
  httpGet: {path: /healthz, port: http}
  {{- toYaml .startup | nindent 2 }}
{{- end }}
