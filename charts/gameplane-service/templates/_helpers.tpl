{{/* Names: every object of a service is <release>-<service>, so one platform = one release. */}}
{{- define "gp.fullname" -}}
{{- printf "%s-%s" .Release.Name .Values.name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Settings prefix of the service, e.g. GP_WALLET_ (see docs/architecture.md). */}}
{{- define "gp.envPrefix" -}}
{{- printf "GP_%s_" (.Values.name | upper) -}}
{{- end -}}

{{- define "gp.selectorLabels" -}}
app.kubernetes.io/name: {{ .Values.name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* app.kubernetes.io/version is the image tag cut to a label value's 63 characters, ending
     alphanumeric: a tag may be longer (skaffold tags local builds with the 64-hex image id). */}}
{{- define "gp.labels" -}}
{{ include "gp.selectorLabels" . }}
app.kubernetes.io/version: {{ regexReplaceAll "[-_.]+$" (include "gp.tag" . | trunc 63) "" | quote }}
app.kubernetes.io/component: {{ .Values.name }}
app.kubernetes.io/part-of: gameplane
app.kubernetes.io/managed-by: {{ .Values.global.managedBy | default .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
gameplane.io/platform: {{ .Release.Name }}
{{- with .Values.global.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "gp.tag" -}}
{{- .Values.image.tag | default .Values.global.image.tag | default .Values.global.version -}}
{{- end -}}

{{- define "gp.image" -}}
{{- printf "%s:%s" (.Values.image.repository | default .Values.global.image.repository) (include "gp.tag" .) -}}
{{- end -}}

{{/* The Secret holding this service's own private key, and the ConfigMap of every public key
     (both created by the umbrella chart or the operator: charts/gameplane/templates/identities.yaml). */}}
{{- define "gp.identitySecret" -}}
{{- printf "%s-%s-identity" .Release.Name .Values.name -}}
{{- end -}}

{{- define "gp.publicKeysConfigMap" -}}
{{- printf "%s-public-keys" .Release.Name -}}
{{- end -}}

{{- define "gp.secretsName" -}}
{{- .Values.global.secretsName | default (printf "%s-secrets" .Release.Name) -}}
{{- end -}}

{{- define "gp.discoveryConfigMap" -}}
{{- .Values.global.discoveryConfigMap | default (printf "%s-endpoints" .Release.Name) -}}
{{- end -}}

{{/* Size profiles. Quantities are written in their canonical form so that what the API server
     stores is byte-for-byte what we render (the operator compares the two to skip no-op writes). */}}
{{- define "gp.resources" -}}
{{- $profiles := dict
  "small"  (dict "requests" (dict "cpu" "50m" "memory" "128Mi") "limits" (dict "cpu" "500m" "memory" "256Mi"))
  "medium" (dict "requests" (dict "cpu" "250m" "memory" "256Mi") "limits" (dict "cpu" "1" "memory" "512Mi"))
  "large"  (dict "requests" (dict "cpu" "1" "memory" "1Gi") "limits" (dict "cpu" "2" "memory" "2Gi"))
-}}
{{- $profile := get $profiles .Values.global.size -}}
{{- toYaml (mergeOverwrite (deepCopy $profile) (.Values.resources | default dict)) -}}
{{- end -}}

{{/* The lowest replica count the service runs with: the HPA minimum, else the fixed replicas. */}}
{{- define "gp.minReplicas" -}}
{{- if .Values.autoscaling.enabled }}{{ .Values.autoscaling.minReplicas }}{{ else }}{{ .Values.replicas }}{{ end -}}
{{- end -}}

{{- define "gp.hasPrometheusOperator" -}}
{{- if .Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor" }}true{{ end -}}
{{- end -}}

{{/* One scheduling setting: the service's own when its `scheduling` block has the key (even empty),
     else global.scheduling's. Returns YAML; callers fromYaml it. */}}
{{- define "gp.schedulingKey" -}}
{{- $own := .root.Values.scheduling | default dict -}}
{{- $global := .root.Values.global.scheduling | default dict -}}
{{- toYaml (dict "v" (hasKey $own .key | ternary (get $own .key) (get $global .key))) -}}
{{- end -}}

{{/* Pod-level placement shared by the service's Pods and its test Pod: nodeSelector, tolerations,
     affinity (priorityClassName and the spread belong to the service's own Pods only). */}}
{{- define "gp.placement" -}}
{{- range $key := list "nodeSelector" "tolerations" "affinity" }}
{{- with (fromYaml (include "gp.schedulingKey" (dict "root" $ "key" $key))).v }}
{{ $key }}:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
{{- end -}}

{{/* topologySpreadConstraints: the explicit ones (labelSelector filled in when missing), else the
     default spread over nodes and zones for a service with more than one replica or an HPA. The
     spread is a preference (ScheduleAnyway): a single node or zone never leaves a Pod pending.
     matchLabelKeys pod-template-hash spreads each rollout's new Pods on their own. */}}
{{- define "gp.topologySpread" -}}
{{- $explicit := (fromYaml (include "gp.schedulingKey" (dict "root" . "key" "topologySpreadConstraints"))).v -}}
{{- $enabled := (fromYaml (include "gp.schedulingKey" (dict "root" . "key" "topologySpread"))).v -}}
{{- $selector := dict "matchLabels" (fromYaml (include "gp.selectorLabels" .)) -}}
{{- $out := list -}}
{{- if $explicit -}}
{{- range $explicit -}}
{{- $out = append $out (merge (deepCopy .) (dict "labelSelector" $selector)) -}}
{{- end -}}
{{- else if and $enabled (or .Values.autoscaling.enabled (gt (int .Values.replicas) 1)) -}}
{{- range $key := list "kubernetes.io/hostname" "topology.kubernetes.io/zone" -}}
{{- $out = append $out (dict "maxSkew" 1 "topologyKey" $key "whenUnsatisfiable" "ScheduleAnyway"
      "labelSelector" $selector "matchLabelKeys" (list "pod-template-hash")) -}}
{{- end -}}
{{- end -}}
{{- with $out }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Whether the development reload mode is on for this service. */}}
{{- define "gp.devReload" -}}
{{- if or (.Values.dev | default dict).reload ((.Values.global.dev | default dict).reload) }}true{{ end -}}
{{- end -}}

{{/* Labels of the migration Job and its Pod: the platform's (so default-deny and the database's
     allow apply to it) but not the service's selector labels (the Service, PDB and NetworkPolicy
     of the service must not select a Job's Pod). */}}
{{- define "gp.migrateLabels" -}}
app.kubernetes.io/name: {{ .Values.name }}-migrate
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ regexReplaceAll "[-_.]+$" (include "gp.tag" . | trunc 63) "" | quote }}
app.kubernetes.io/component: migrate
app.kubernetes.io/part-of: gameplane
app.kubernetes.io/managed-by: {{ .Values.global.managedBy | default .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
gameplane.io/platform: {{ .Release.Name }}
{{- with .Values.global.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The migration Job's Pod template (its hash names the Job). */}}
{{- define "gp.migratePod" -}}
{{- $p := include "gp.envPrefix" . -}}
metadata:
  labels:
    {{- include "gp.migrateLabels" . | nindent 4 }}
spec:
  restartPolicy: OnFailure
  serviceAccountName: {{ include "gp.fullname" . }}
  automountServiceAccountToken: false
  enableServiceLinks: false
  {{- with .Values.global.image.pullSecrets }}
  imagePullSecrets:
    {{- range . }}
    - name: {{ . }}
    {{- end }}
  {{- end }}
  {{- with (include "gp.placement" . | trim) }}
  {{- . | nindent 2 }}
  {{- end }}
  securityContext:
    runAsNonRoot: true
    runAsUser: 10001
    runAsGroup: 10001
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: migrate
      image: {{ include "gp.image" . | quote }}
      imagePullPolicy: {{ .Values.global.image.pullPolicy }}
      args: ["migrate", {{ .Values.name | quote }}]
      env:
        {{- include "gp.databaseEnv" . | nindent 8 }}
        - name: {{ $p }}DB_WAIT_SECONDS
          value: "300"
        - name: {{ $p }}LOG_JSON
          value: "true"
      resources:
        requests: {cpu: 50m, memory: 128Mi}
        limits: {cpu: 500m, memory: 256Mi}
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        runAsNonRoot: true
        capabilities:
          drop: ["ALL"]
        seccompProfile:
          type: RuntimeDefault
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        {{- include "gp.databaseMounts" . | nindent 8 }}
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
    {{- include "gp.databaseVolumes" . | nindent 4 }}
{{- end -}}

{{/* One egress rule to addresses outside the cluster: {cidrs, ports}. No cidrs means the ports
     to any address (what the spec says when it names only ports). */}}
{{- define "gp.egressRule" -}}
{{- $r := .rule }}
{{- if not $r.ports }}{{ fail (printf "%s needs ports" .comment) }}{{ end }}
    # {{ .comment }}
    - ports:
        {{- range $r.ports }}
        - port: {{ . }}
          protocol: TCP
        {{- end }}
      {{- with $r.cidrs }}
      to:
        {{- range . }}
        - ipBlock:
            cidr: {{ . }}
        {{- end }}
      {{- end }}
{{- end -}}

{{/* Query of the service's DSN from global.database.tls: sslmode, and sslrootcert where the CA
     Secret is mounted (the kit hands both to every connection: gameplane.kit.db.libpq_dsn). */}}
{{- define "gp.databaseOptions" -}}
{{- $tls := .Values.global.database.tls | default dict -}}
{{- if $tls.mode -}}
?sslmode={{ $tls.mode }}{{ if $tls.caSecretName }}&sslrootcert=/etc/gameplane/database-ca/ca.crt{{ end }}
{{- end -}}
{{- end -}}

{{/* The service's database DSN, the same for its pods and its migration Job. The Secret holds the
     server DSN; each service appends its own database name. The platform's own Secret (the
     development PostgreSQL) has one per service: its role. */}}
{{- define "gp.databaseEnv" -}}
- name: GP_DATABASE_SERVER_URL
  valueFrom:
    secretKeyRef:
      {{- if .Values.global.database.secretName }}
      name: {{ .Values.global.database.secretName }}
      key: {{ .Values.global.database.secretKey }}
      {{- else }}
      name: {{ include "gp.secretsName" . }}
      key: database-url-{{ .Values.name }}
      {{- end }}
- name: {{ include "gp.envPrefix" . }}DATABASE_URL
  value: "$(GP_DATABASE_SERVER_URL)/gp_{{ .Values.name }}{{ include "gp.databaseOptions" . }}"
{{- end -}}

{{/* The database CA (global.database.tls.caSecretName), where sslrootcert points. */}}
{{- define "gp.databaseMounts" -}}
{{- if .Values.global.database.tls.caSecretName }}
- name: database-ca
  mountPath: /etc/gameplane/database-ca
  readOnly: true
{{- end }}
{{- end -}}

{{- define "gp.databaseVolumes" -}}
{{- if .Values.global.database.tls.caSecretName }}
- name: database-ca
  secret:
    secretName: {{ .Values.global.database.tls.caSecretName }}
    items:
      - key: {{ .Values.global.database.tls.caKey }}
        path: ca.crt
{{- end }}
{{- end -}}

{{/* Egress to the service's PostgreSQL, for its pods and its migration Job. */}}
{{- define "gp.databaseEgress" -}}
{{- $np := .Values.global.networkPolicy }}
{{- if .Values.global.database.secretName }}
{{- include "gp.egressRule" (dict "comment" "The external PostgreSQL (global.networkPolicy.egress.database)." "rule" $np.egress.database) }}
{{- else }}
    # The platform's development PostgreSQL.
    - to:
        - podSelector:
            matchLabels:
              app.kubernetes.io/name: postgres
              app.kubernetes.io/instance: {{ .Release.Name }}
      ports:
        - port: 5432
          protocol: TCP
{{- end }}
{{- end -}}

{{/* Python for a `helm test` Pod: readyz(url) passes once the URL answers 2xx. A fresh Pod's own
NetworkPolicy admission reaches the node's policy agent a moment after the Pod starts (longer on a
busy node, when the connection is refused meanwhile): a connection that fails is tried again for
up to a minute; an answer that is not 2xx (the service is not ready) fails at once. */}}
{{- define "gp.readyzCheck" -}}
import time, urllib.error, urllib.request
def readyz(url, patience=60):
    deadline = time.monotonic() + patience
    while True:
        try:
            urllib.request.urlopen(url, timeout=10)
            print("ready:", url, flush=True)
            return
        except urllib.error.HTTPError:
            raise
        except OSError as exc:
            if time.monotonic() > deadline:
                raise
            print("not reachable yet:", url, exc, flush=True)
            time.sleep(2)
{{- end }}
