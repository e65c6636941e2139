{{/*
One Deployment of a Parley service. Call with
  (dict "root" $ "component" "gateway" "values" .Values.gateway "module" "services.gateway"
        "replicas" true|false "grace" N "preStop" N
        ["secretEnv" (dict "name" ENV "secret" SECRET "key" KEY)])
*/}}
{{- define "parley.deployment" -}}
{{- $ := .root }}
{{- $w := .values }}
{{- $c := .component }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "parley.componentName" (list $ $c) }}
  namespace: {{ $.Release.Namespace }}
  labels:
    {{- include "parley.labels" (list $ $c) | trim | nindent 4 }}
spec:
  {{- if .replicas }}
  replicas: {{ $w.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  strategy:
    type: RollingUpdate
    rollingUpdate:
      # A new pod is ready before an old one starts draining: capacity never dips.
      maxSurge: 1
      maxUnavailable: 0
  selector:
    matchLabels:
      {{- include "parley.selectorLabels" (list $ $c) | trim | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "parley.labels" (list $ $c) | trim | nindent 8 }}
        {{- with $w.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        {{- include "parley.checksums" $ | trim | nindent 8 }}
        {{- with $w.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      {{- include "parley.podSecurity" $ | trim | nindent 6 }}
      terminationGracePeriodSeconds: {{ .grace }}
      {{- with $w.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      topologySpreadConstraints:
        {{- include "parley.spread" (list $ $w $c) | trim | nindent 8 }}
      {{- with $w.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $w.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $w.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ $c }}
          image: {{ include "parley.image" $ }}
          imagePullPolicy: {{ $.Values.image.pullPolicy }}
          command: ["python", "-m", {{ .module | quote }}]
          ports:
            - name: http
              containerPort: {{ $w.port }}
              protocol: TCP
            - name: metrics
              containerPort: {{ $.Values.metrics.port }}
              protocol: TCP
          envFrom:
            {{- include "parley.envFrom" $ | trim | nindent 12 }}
          env:
            - name: PARLEY_PORT
              value: {{ $w.port | quote }}
            - name: PARLEY_POD_ID
              valueFrom:
                fieldRef: {fieldPath: metadata.name}
            {{- with .secretEnv }}
            - name: {{ .name }}
              valueFrom:
                secretKeyRef: {name: {{ .secret | quote }}, key: {{ .key | quote }}}
            {{- end }}
            {{- range $k := keys $w.env | sortAlpha }}
            - name: {{ $k }}
              value: {{ get $w.env $k | toString | quote }}
            {{- end }}
          {{- include "parley.probes" $w.probes | trim | nindent 10 }}
          {{- if .preStop }}
          lifecycle:
            preStop:
              # Native sleep (no shell in the image): endpoints drop the pod before SIGTERM.
              sleep:
                seconds: {{ .preStop }}
          {{- end }}
          resources:
            {{- toYaml $w.resources | nindent 12 }}
          securityContext:
            {{- toYaml $.Values.securityContext | nindent 12 }}
          volumeMounts:
            {{- include "parley.volumeMounts" $ | trim | nindent 12 }}
      volumes:
        {{- include "parley.volumes" $ | trim | nindent 8 }}
{{- end }}

{{/* A PodDisruptionBudget for one component. */}}
{{- define "parley.pdb" -}}
{{- $ := .root }}
{{- if .values.pdb.enabled }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "parley.componentName" (list $ .component) }}
  namespace: {{ $.Release.Namespace }}
  labels:
    {{- include "parley.labels" (list $ .component) | trim | nindent 4 }}
spec:
  maxUnavailable: {{ .values.pdb.maxUnavailable }}
  unhealthyPodEvictionPolicy: AlwaysAllow
  selector:
    matchLabels:
      {{- include "parley.selectorLabels" (list $ .component) | trim | nindent 6 }}
{{- end }}
{{- end }}
