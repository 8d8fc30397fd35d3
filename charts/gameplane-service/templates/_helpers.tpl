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
