{{/* Names, labels and the pieces every program's pod shares. */}}

{{- define "sluice.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-scoped prefix; the program name is appended, so it leaves room for "-controller". */}}
{{- define "sluice.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "sluice.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Call with (dict "root" $ "component" "api"). */}}
{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sluice.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{- define "sluice.labels" -}}
helm.sh/chart: {{ include "sluice.chart" .root }}
{{ include "sluice.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: sluice
{{- end }}

{{- define "sluice.secretName" -}}
{{- default (printf "%s-credentials" (include "sluice.fullname" .)) .Values.secret.existingSecret }}
{{- end }}

{{- define "sluice.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The ServiceAccount a program runs as: the chart's own, or an existing one.
Call with (dict "root" $ "component" "api").
*/}}
{{- define "sluice.serviceAccountName" -}}
{{- $account := (index .root.Values .component).serviceAccount }}
{{- if $account.create }}
{{- default (printf "%s-%s" (include "sluice.fullname" .root) .component) $account.name }}
{{- else }}
{{- default "default" $account.name }}
{{- end }}
{{- end }}

{{/*
SLUICE_NAMESPACE, the prefix of the release's queues, Redis keys and controller Lease:
"<namespace>-<release>" unless set, so that releases sharing a broker or a Redis never
consume each other's batches. Release names may hold dots, which the code refuses.
*/}}
{{- define "sluice.namespace" -}}
{{- default (printf "%s-%s" .Release.Namespace .Release.Name | replace "." "-") .Values.config.SLUICE_NAMESPACE }}
{{- end }}

{{/* The queue the worker consumes, as src/core/broker/queue-names.ts builds it. */}}
{{- define "sluice.batchesQueue" -}}
{{- printf "%s.batches" (include "sluice.namespace" .) }}
{{- end }}

{{/*
A program's drain deadline on SIGTERM, in milliseconds: SHUTDOWN_TIMEOUT_MS. A stopping
worker waits for the batches it holds, and one of them may be in a statement PostgreSQL
ends only after DB_STATEMENT_TIMEOUT_MS, then rolled back and handed back within
COMMAND_TIMEOUT_MS: the worker's drain outlasts the two, so that it never exits mid-batch.
Call with (dict "root" $ "component" "worker").
*/}}
{{- define "sluice.shutdownTimeoutMs" -}}
{{- $config := .root.Values.config }}
{{- $drain := int64 $config.SHUTDOWN_TIMEOUT_MS }}
{{- if eq .component "worker" }}
{{- $drain = max $drain (add (int64 $config.DB_STATEMENT_TIMEOUT_MS) (int64 $config.COMMAND_TIMEOUT_MS)) }}
{{- end }}
{{- $drain }}
{{- end }}

{{/*
Seconds the kubelet waits after SIGTERM: the program's own drain deadline (rounded up),
the api's preStop pause, and a margin for closing connections, so the kubelet never kills
a program still draining.
Call with (dict "root" $ "component" "worker" "preStop" <seconds>).
*/}}
{{- define "sluice.terminationGracePeriodSeconds" -}}
{{- $drain := div (add (include "sluice.shutdownTimeoutMs" .) 999) 1000 }}
{{- add $drain (int .preStop) (int .root.Values.terminationGraceMarginSeconds) }}
{{- end }}

{{/* Environment every program gets: settings from the ConfigMap, credentials from the Secret. */}}
{{- define "sluice.env" -}}
envFrom:
  - configMapRef:
      name: {{ include "sluice.fullname" .root }}-config
env:
{{- range $key := list "DATABASE_URL" "REDIS_URL" "RABBITMQ_URL" "AWS_ACCESS_KEY_ID" "AWS_SECRET_ACCESS_KEY" "API_KEYS" }}
{{- $url := get $.root.Values.secret.urlFrom $key }}
{{- if $url }}
{{- /* The URL's parts first: the kubelet replaces $(NAME) only with variables defined before. */}}
{{- $parts := list (list "USERNAME" ($url.usernameKey | default "username")) (list "PASSWORD" ($url.passwordKey | default "password")) (list "HOST" ($url.hostKey | default "host")) (list "PORT" ($url.portKey | default "port")) }}
{{- range $parts }}
  - name: {{ printf "%s_%s" $key (index . 0) }}
    valueFrom:
      secretKeyRef:
        name: {{ $url.name }}
        key: {{ index . 1 }}
{{- end }}
  - name: {{ $key }}
    value: {{ printf "%s://$(%s_USERNAME):$(%s_PASSWORD)@$(%s_HOST):$(%s_PORT)%s" $url.scheme $key $key $key $key ($url.path | default "") | quote }}
{{- else }}
{{- $ref := get $.root.Values.secret.keyRefs $key | default dict }}
  - name: {{ $key }}
    valueFrom:
      secretKeyRef:
        name: {{ $ref.name | default (include "sluice.secretName" $.root) }}
        key: {{ $ref.key | default $key }}
        {{- /* Optional: IRSA needs no AWS keys, and AUTH_DISABLED needs no API_KEYS. */}}
        optional: true
{{- end }}
{{- end }}
{{- if .root.Values.debug.enabled }}
  - name: DEBUG_HOST
    value: "0.0.0.0"
{{- end }}
{{- with .extraEnv }}
{{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{- define "sluice.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 1000
runAsGroup: 1000
fsGroup: 1000
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The debug loop syncs sources into the container, so only then is the root filesystem writable. */}}
{{- define "sluice.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: {{ not .Values.debug.enabled }}
capabilities:
  drop:
    - ALL
{{- end }}

{{/*
The container command: the built program in production; in debug mode the TypeScript
sources with the inspector and watch mode, the command of the program's debug npm script
(`npm run start:debug:*`) run by node itself: as PID 1, npm ends the program without its
shutdown on SIGTERM.
Call with (dict "root" $ "program" "api" "debugPort" 9229).
*/}}
{{- define "sluice.command" -}}
{{- if .root.Values.debug.enabled }}
{{- list "node" (printf "--inspect=0.0.0.0:%v" .debugPort) "--watch" (printf "src/%s/main.ts" .program) | toJson }}
{{- else }}
{{- $flags := get (get .root.Values .program) "nodeOptions" | default "" | splitList " " | compact }}
{{- concat (list "node") $flags (list (printf "dist/%s/main.js" .program)) | toJson }}
{{- end }}
{{- end }}

{{- define "sluice.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
The ConfigMap holding TARGETS_FILE's JSON, or nothing without targets: the user's own, or the
chart's, which is a hook for the migration Job (it runs before the release's objects exist).
*/}}
{{- define "sluice.targetsConfigMap" -}}
{{- with .Values.targets }}
{{- if and .existingConfigMap .tenants }}
{{- fail "targets: set targets.tenants or targets.existingConfigMap, not both" }}
{{- end }}
{{- if and (or .existingConfigMap .tenants) $.Values.config.TARGETS_FILE }}
{{- fail "targets: the chart mounts the targets file and sets TARGETS_FILE itself; leave config.TARGETS_FILE empty" }}
{{- end }}
{{- if .existingConfigMap }}
{{- .existingConfigMap }}
{{- else if .tenants }}
{{- printf "%s-%s" (include "sluice.fullname" $) (ternary "migrate-targets" "targets" $.Values.migrations.enabled) }}
{{- end }}
{{- end }}
{{- end }}

{{/* Where the targets file is mounted, read-only, and what TARGETS_FILE says. */}}
{{- define "sluice.targetsDir" -}}
/etc/sluice/targets
{{- end }}

{{- define "sluice.targetsFile" -}}
{{- printf "%s/%s" (include "sluice.targetsDir" .) .Values.targets.key }}
{{- end }}

{{- define "sluice.targetsVolume" -}}
name: targets
configMap:
  name: {{ include "sluice.targetsConfigMap" . }}
  items:
    - key: {{ .Values.targets.key }}
      path: {{ .Values.targets.key }}
{{- end }}

{{- define "sluice.targetsMount" -}}
name: targets
mountPath: {{ include "sluice.targetsDir" . }}
readOnly: true
{{- end }}
