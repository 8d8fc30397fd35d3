{{/* Labels of the platform-level objects; `component` names the part (postgres, nats, ...). */}}
{{- define "gpu.labels" -}}
app.kubernetes.io/name: {{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ regexReplaceAll "[-_.]+$" (.root.Values.global.image.tag | default .root.Values.global.version | trunc 63) "" | quote }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: gameplane
app.kubernetes.io/managed-by: {{ .root.Values.global.managedBy | default .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
gameplane.io/platform: {{ .root.Release.Name }}
{{- with .root.Values.global.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "gpu.selectorLabels" -}}
app.kubernetes.io/name: {{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{/* Every service block of the values, enabled or not, in a stable order. */}}
{{- define "gpu.serviceNames" -}}
gateway players wallet games sessions payments bonus risk affiliates analytics web backoffice rgs psp
{{- end -}}

{{/* A Secret value: the one given in values, else the one already in the cluster (helm upgrade),
     else a new random one. The operator always passes values, so its renders are deterministic. */}}
{{- define "gpu.secretValue" -}}
{{- $existing := (lookup "v1" "Secret" .root.Release.Namespace (include "gpu.secretsName" .root)).data | default dict -}}
{{- if .value -}}{{ .value }}
{{- else if hasKey $existing .key -}}{{ get $existing .key | b64dec }}
{{- else -}}{{ randAlphaNum 48 }}
{{- end -}}
{{- end -}}

{{/* The platform Secret (dev database password and DSN): global.secretsName, the same
     name the services read (gp.secretsName in the service chart). */}}
{{- define "gpu.secretsName" -}}
{{- .Values.global.secretsName | default (printf "%s-secrets" .Release.Name) -}}
{{- end -}}

{{/* Placement of the platform-level Pods (development PostgreSQL and NATS, the discovery test):
     global.scheduling's nodeSelector, tolerations and affinity. */}}
{{- define "gpu.placement" -}}
{{- $s := .Values.global.scheduling | default dict -}}
{{- range $key := list "nodeSelector" "tolerations" "affinity" }}
{{- with get $s $key }}
{{ $key }}:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
{{- end -}}

{{/* JSON list of the enabled services with a database of their own: the only clients of the
     development PostgreSQL and NATS. */}}
{{- define "gpu.backendUsers" -}}
{{- $out := list -}}
{{- range $svc := splitList " " (include "gpu.serviceNames" .) -}}
{{- $v := get $.Values $svc -}}
{{- if and $v.enabled $v.database.enabled -}}{{- $out = append $out $svc -}}{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* The development PostgreSQL password of the role gp_<service>: sha256("<server password>:gp_<service>"),
     48 hex digits; postgres.yaml's init script computes the same with sha256sum. */}}
{{- define "gpu.rolePassword" -}}
{{- printf "%s:gp_%s" .password .service | sha256sum | trunc 48 -}}
{{- end -}}
