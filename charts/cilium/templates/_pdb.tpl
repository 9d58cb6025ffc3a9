{{/*
A PodDisruptionBudget for one workload. Arguments: (list $ <name> <podDisruptionBudget values>
<the workload's selector labels> <annotations>). minAvailable wins over maxUnavailable.
*/}}
{{- define "cilium.podDisruptionBudget" -}}
{{- $ := index . 0 -}}
{{- $name := index . 1 -}}
{{- $pdb := index . 2 -}}
{{- $selector := index . 3 -}}
{{- $annotations := index . 4 -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $name }}
  namespace: {{ include "cilium.namespace" $ }}
  {{- with $annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  labels:
    {{- toYaml $selector | nindent 4 }}
    app.kubernetes.io/name: {{ $name }}
    {{- include "cilium.labels" $ | nindent 4 }}
spec:
  {{- if not (kindIs "invalid" $pdb.minAvailable) }}
  minAvailable: {{ $pdb.minAvailable }}
  {{- else if not (kindIs "invalid" $pdb.maxUnavailable) }}
  maxUnavailable: {{ $pdb.maxUnavailable }}
  {{- end }}
  {{- with $pdb.unhealthyPodEvictionPolicy }}
  unhealthyPodEvictionPolicy: {{ . }}
  {{- end }}
  selector:
    matchLabels:
      {{- toYaml $selector | nindent 6 }}
{{- end -}}
