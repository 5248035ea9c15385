{{/*
The Deployment of one program. Call with a dict:
  root       the chart's top-level context
  component  api | worker | controller
  debugPort  the inspector port (9229, 9230, 9231)
  readyPath  the readiness path (/readyz, or /healthz for the controller, which takes no traffic)
  replicas   the replica count, or nil to leave it to an autoscaler or `kubectl scale`
  preStop    seconds to pause before SIGTERM reaches the program
  env        extra environment entries (list)
  volumes    extra volumes (list), mounts: extra volume mounts (list), before the
             program's own extraVolumes and extraVolumeMounts
*/}}
{{- define "sluice.deployment" -}}
{{- $root := .root }}
{{- $values := index $root.Values .component }}
{{- $name := printf "%s-%s" (include "sluice.fullname" $root) .component }}
{{- /* Each program migrates at start unless the migration Job does: each applies the targets. */}}
{{- $targets := and (not $root.Values.migrations.enabled) (include "sluice.targetsConfigMap" $root) }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  labels:
    {{- include "sluice.labels" (dict "root" $root "component" .component) | nindent 4 }}
spec:
  {{- if not (kindIs "invalid" .replicas) }}
  replicas: {{ .replicas }}
  {{- end }}
  revisionHistoryLimit: {{ $root.Values.revisionHistoryLimit }}
  selector:
    matchLabels:
      {{- include "sluice.selectorLabels" (dict "root" $root "component" .component) | nindent 6 }}
  template:
    metadata:
      labels:
        {{- /* The chart's own labels win: the selector depends on them. */}}
        {{- $labels := include "sluice.labels" (dict "root" $root "component" .component) | fromYaml }}
        {{- merge $labels $values.podLabels $root.Values.podLabels | toYaml | nindent 8 }}
      annotations:
        {{- /* Roll the pods when a setting or a chart-managed credential changes. */}}
        checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
        {{- if and $targets $root.Values.targets.tenants }}
        checksum/targets: {{ include (print $root.Template.BasePath "/targets-configmap.yaml") $root | sha256sum }}
        {{- end }}
        {{- if not $root.Values.secret.existingSecret }}
        checksum/secret: {{ include (print $root.Template.BasePath "/secret.yaml") $root | sha256sum }}
        {{- end }}
        {{- with merge (dict) $values.podAnnotations $root.Values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "sluice.serviceAccountName" (dict "root" $root "component" .component) }}
      automountServiceAccountToken: {{ eq .component "controller" }}
      {{- with default $root.Values.priorityClassName $values.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- include "sluice.podSecurityContext" $root | nindent 8 }}
      terminationGracePeriodSeconds: {{ include "sluice.terminationGracePeriodSeconds" (dict "root" $root "component" .component "preStop" .preStop) }}
      containers:
        - name: {{ .component }}
          image: {{ include "sluice.image" $root | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command: {{ include "sluice.command" (dict "root" $root "program" .component "debugPort" .debugPort) }}
          {{- include "sluice.env" (dict "root" $root "extraEnv" (concat (default list .env) $values.extraEnv)) | nindent 10 }}
          ports:
            - name: http
              containerPort: {{ $values.port }}
              protocol: TCP
            {{- if $root.Values.debug.enabled }}
            - name: debug
              containerPort: {{ .debugPort }}
              protocol: TCP
            {{- end }}
          {{- if not $root.Values.debug.enabled }}
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: 10
            timeoutSeconds: 3
            failureThreshold: 3
          {{- end }}
          readinessProbe:
            httpGet:
              path: {{ .readyPath }}
              port: http
            periodSeconds: 5
            timeoutSeconds: 3
            failureThreshold: 2
          {{- /* In debug mode too: there a start that failed (a service not reachable yet)
          waits in watch mode for a file change instead of exiting, and this window's end is
          what restarts it. */}}
          startupProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: 2
            failureThreshold: 30
          {{- if .preStop }}
          lifecycle:
            preStop:
              sleep:
                seconds: {{ .preStop }}
          {{- end }}
          {{- with $values.resources }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          securityContext:
            {{- include "sluice.containerSecurityContext" $root | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- if $targets }}
            - {{- include "sluice.targetsMount" $root | nindent 14 }}
            {{- end }}
            {{- with concat (default list .mounts) $values.extraVolumeMounts }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: 1Gi
        {{- if $targets }}
        - {{- include "sluice.targetsVolume" $root | nindent 10 }}
        {{- end }}
        {{- with concat (default list .volumes) $values.extraVolumes }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- include "sluice.scheduling" $values | nindent 6 }}
{{- end }}
