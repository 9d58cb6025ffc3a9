{{/*
A Prometheus Operator ServiceMonitor. Arguments: (list $ <name> <serviceMonitor values>
<selector labels> <port name>). Without the monitoring.coreos.com/v1 API (and without
trustCRDsExist) the render fails instead of producing an object the cluster would refuse.
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
  - port: {{ $port }}
    interval: {{ $sm.interval | quote }}
    {{- with $sm.scrapeTimeout }}
    scrapeTimeout: {{ . | quote }}
    {{- end }}
    honorLabels: true
    path: /metrics
    {{- with $sm.relabelings }}
    relabelings:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with $sm.metricRelabelings }}
    metricRelabelings:
      {{- toYaml . | nindent 6 }}
    {{- end }}
  targetLabels:
  - k8s-app
  {{- with $sm.jobLabel }}
  jobLabel: {{ . }}
  {{- end }}
{{- end -}}
