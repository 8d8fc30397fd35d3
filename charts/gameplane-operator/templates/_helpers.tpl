{{- define "gpo.fullname" -}}
{{- if contains "gameplane-operator" .Release.Name }}{{ .Release.Name | trunc 63 }}{{ else }}{{ printf "%s-gameplane-operator" .Release.Name | trunc 63 | trimSuffix "-" }}{{ end -}}
{{- end -}}

{{- define "gpo.selectorLabels" -}}
app.kubernetes.io/name: gameplane-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "gpo.labels" -}}
{{ include "gpo.selectorLabels" . }}
app.kubernetes.io/version: {{ regexReplaceAll "[-_.]+$" (.Values.image.tag | default .Chart.AppVersion | trunc 63) "" | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: gameplane
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* nodeSelector, tolerations, affinity: the operator Pod and its test Pod go to the same nodes. */}}
{{- define "gpo.placement" -}}
{{- range $key := list "nodeSelector" "tolerations" "affinity" }}
{{- with get $.Values $key }}
{{ $key }}:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
{{- end -}}
