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

{{/* The operator's rights on what a platform consists of: in a Role per watched namespace, or in its ClusterRole. */}}
{{- define "gpo.namespacedRules" -}}
# The custom resource: watched, annotated by kopf (last handled spec), status written.
- apiGroups: [gameplane.io]
  resources: [gamingplatforms]
  verbs: [get, list, watch, patch]
- apiGroups: [gameplane.io]
  resources: [gamingplatforms/status]
  verbs: [get, patch]
# Events on transitions.
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch]
# FaultsActive: the services' own report of the fault drills they apply (GET /readyz through
# the API server's Pod proxy). Read-only: list to find a service's Pods, get on the proxy (a GET
# reaches no state-changing route; create, i.e. POST through the proxy, is not granted).
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
- apiGroups: [""]
  resources: [pods/proxy]
  verbs: [get]
# What the gameplane chart renders: applied (server-side apply = patch), pruned (delete).
- apiGroups: [""]
  resources: [configmaps, secrets, services, serviceaccounts]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [apps]
  resources: [deployments, statefulsets]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [batch]
  resources: [jobs]  # each service's migration Job
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies, ingresses]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [monitoring.coreos.com]
  resources: [servicemonitors, prometheusrules]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes]
  verbs: [get, list, watch, create, patch, delete]
{{- end -}}
