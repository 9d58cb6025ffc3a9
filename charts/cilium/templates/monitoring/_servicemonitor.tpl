{{/*
A Prometheus Operator ServiceMonitor. Arguments: (list $ <name> <serviceMonitor values>
<selector labels> <endpoints>), where <endpoints> is a port name (one endpoint scraped as
the serviceMonitor values say) or a list of (dict "port" <name> "values" <its values>), one
endpoint each. Without the monitoring.coreos.com/v1 API (and without trustCRDsExist) the
render fails instead of producing an object the cluster would refuse.
*/}}
{{- define "cilium.serviceMonitor" -}}
{{- $ctx := index . 0 -}}
{{- $name := index . 1 -}}
{{- $sm := index . 2 -}}
{{- $selector := index . 3 -}}
{{- $port := index . 4 -}}
{{- if not (or $sm.trustCRDsExist ($ctx.Capabilities.APIVersions.Has "monitoring.coreos.com/v1")) -}}
{{- fail (printf "%s: the ServiceMonitor CRD (monitoring.coreos.com/v1) is not installed; install the Prometheus Operator, or set trustCRDsExist=true when rendering without a cluster" $name) -}}
{{- end -}}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ $name }}
  namespace: {{ include "cilium.namespace" $ctx }}
  labels:
    {{- include "cilium.labels" $ctx | nindent 4 }}
    {{- with $sm.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $sm.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  selector:
    matchLabels:
      {{- toYaml $selector | nindent 6 }}
  namespaceSelector:
    matchNames:
    - {{ include "cilium.namespace" $ctx }}
  endpoints:
  {{- $endpoints := $port }}
  {{- if kindIs "string" $port }}
  {{- $endpoints = list (dict "port" $port "values" $sm) }}
  {{- end }}
  {{- range $endpoints }}
  {{- $ep := .values }}
  - port: {{ .port }}
    interval: {{ $ep.interval | quote }}
    {{- with $ep.scrapeTimeout }}
    scrapeTimeout: {{ . | quote }}
    {{- end }}
    honorLabels: true
    path: /metrics
    {{- with $ep.relabelings }}
    relabelings:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with $ep.metricRelabelings }}
    metricRelabelings:
      {{- toYaml . | nindent 6 }}
    {{- end }}
  {{- end }}
  targetLabels:
  - k8s-app
  {{- with $sm.jobLabel }}
  jobLabel: {{ . }}
  {{- end }}
{{- end -}}
