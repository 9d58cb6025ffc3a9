{{/* "true" when the Cluster Mesh API server is deployed. */}}
{{- define "cilium.clustermesh.enabled" -}}
{{- and .Values.clustermesh.useAPIServer (not .Values.preflight.enabled) -}}
{{- end -}}

{{/* "true" when Helm generates the Cluster Mesh API server's certificates. */}}
{{- define "cilium.clustermesh.helmCerts" -}}
{{- $tls := .Values.clustermesh.apiserver.tls -}}
{{- if and (eq (include "cilium.clustermesh.enabled" .) "true") $tls.auto.enabled -}}
{{- if ne $tls.auto.method "helm" -}}
{{- fail (printf "clustermesh.apiserver.tls.auto.method %q is not supported by this chart; use \"helm\"" $tls.auto.method) -}}
{{- end -}}
true
{{- else -}}
false
{{- end -}}
{{- end -}}

{{/*
The Cluster Mesh certificates, signed by cilium-ca: the etcd server's, the admin client's
(the API server itself), the remote clusters' client, and KVStoreMesh's local client.
*/}}
{{- define "cilium.clustermesh.secrets" -}}
{{- $_ := include "cilium.ca.setup" . -}}
{{- $tls := .Values.clustermesh.apiserver.tls -}}
{{- $days := int $tls.auto.certValidityDuration -}}
{{- $cluster := .Values.cluster.name -}}
{{- $server := list "clustermesh-apiserver-server-cert" "clustermesh-apiserver.cilium.io" (concat (list "clustermesh-apiserver.cilium.io" "*.mesh.cilium.io" (printf "clustermesh-apiserver.%s.svc" (include "cilium.namespace" .))) $tls.server.extraDnsNames) (concat (list "127.0.0.1" "::1") $tls.server.extraIpAddresses) -}}
{{- $admin := list "clustermesh-apiserver-admin-cert" (printf "%s-admin" $cluster) (list "localhost") list -}}
{{- $remote := list "clustermesh-apiserver-remote-cert" "remote" list list -}}
{{- $certs := list $server $admin $remote -}}
{{- if .Values.clustermesh.apiserver.kvstoremesh.enabled -}}
{{- $certs = append $certs (list "clustermesh-apiserver-local-cert" (printf "local-%s" $cluster) list list) -}}
{{- end -}}
{{- range $i, $c := $certs }}
{{- $cert := genSignedCert (index $c 1) (index $c 3) (index $c 2) $days $.ciliumCA }}
---
apiVersion: v1
kind: Secret
metadata:
  name: {{ index $c 0 }}
  namespace: {{ include "cilium.namespace" $ }}
  labels:
    {{- include "cilium.labels" $ | nindent 4 }}
  {{- with $.Values.clustermesh.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
type: kubernetes.io/tls
data:
  ca.crt: {{ $.ciliumCA.Cert | b64enc }}
  tls.crt: {{ $cert.Cert | b64enc }}
  tls.key: {{ $cert.Key | b64enc }}
{{- end }}
{{- end -}}
