{{/* Relay's config.yaml. */}}
{{- define "cilium.relay.config" -}}
{{- $relay := .Values.hubble.relay -}}
{{- $peerPort := .Values.hubble.tls.enabled | ternary 443 80 -}}
cluster-name: {{ .Values.cluster.name }}
peer-service: "hubble-peer.{{ include "cilium.namespace" . }}.svc.{{ .Values.hubble.peerService.clusterDomain }}.:{{ $peerPort }}"
listen-address: "{{ $relay.listenHost }}:{{ $relay.listenPort }}"
gops: {{ $relay.gops.enabled }}
gops-port: {{ $relay.gops.port | quote }}
{{- with $relay.retryTimeout }}
retry-timeout: {{ . }}
{{- end }}
{{- with $relay.sortBufferLenMax }}
sort-buffer-len-max: {{ . }}
{{- end }}
{{- with $relay.sortBufferDrainTimeout }}
sort-buffer-drain-timeout: {{ . }}
{{- end }}
{{- if $relay.pprof.enabled }}
pprof: "true"
pprof-address: {{ $relay.pprof.address | quote }}
pprof-port: {{ $relay.pprof.port | quote }}
{{- end }}
{{- if $relay.prometheus.enabled }}
metrics-listen-address: ":{{ $relay.prometheus.port }}"
{{- end }}
{{- if .Values.hubble.tls.enabled }}
tls-hubble-client-cert-file: /var/lib/hubble-relay/tls/client.crt
tls-hubble-client-key-file: /var/lib/hubble-relay/tls/client.key
tls-hubble-server-ca-files: /var/lib/hubble-relay/tls/hubble-server-ca.crt
{{- else }}
disable-client-tls: true
{{- end }}
{{- if and .Values.hubble.tls.enabled $relay.tls.server.enabled }}
tls-relay-server-cert-file: /var/lib/hubble-relay/tls/server.crt
tls-relay-server-key-file: /var/lib/hubble-relay/tls/server.key
{{- if $relay.tls.server.mtls }}
tls-relay-client-ca-files: /var/lib/hubble-relay/tls/hubble-server-ca.crt
{{- end }}
{{- else }}
disable-server-tls: true
{{- end }}
{{- end -}}
