{{/*
Shared helpers of the ciliumctl Cilium chart.
*/}}

{{/* Namespace of every namespaced object. */}}
{{- define "cilium.namespace" -}}
{{- .Values.namespaceOverride | default .Release.Namespace -}}
{{- end -}}

{{/* Labels every object carries: the component's part-of label plus commonLabels. */}}
{{- define "cilium.labels" -}}
app.kubernetes.io/part-of: cilium
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
The Cilium release being installed, checked once: 1.17.x or 1.18.x.
*/}}
{{- define "cilium.version" -}}
{{- $v := toString .Values.ciliumVersion | trimPrefix "v" -}}
{{- if not (regexMatch "^1\\.1[78]\\.[0-9]+$" $v) -}}
{{- fail (printf "ciliumVersion %q is not supported: this chart installs Cilium 1.17.x or 1.18.x" (toString .Values.ciliumVersion)) -}}
{{- end -}}
{{- $v -}}
{{- end -}}

{{/* "true" when the installed release is 1.18 or newer. */}}
{{- define "cilium.is118" -}}
{{- semverCompare ">=1.18.0-0" (include "cilium.version" .) -}}
{{- end -}}

{{/*
The minor version whose defaults apply: upgradeCompatibility when set, else the release
being installed. Returned as "1.N".
*/}}
{{- define "cilium.compatVersion" -}}
{{- $v := include "cilium.version" . -}}
{{- if .Values.upgradeCompatibility -}}
{{- $c := toString .Values.upgradeCompatibility | trimPrefix "v" -}}
{{- if not (regexMatch "^1\\.[0-9]+(\\.[0-9]+)?$" $c) -}}
{{- fail (printf "upgradeCompatibility %q must look like \"1.17\"" $c) -}}
{{- end -}}
{{- $c -}}
{{- else -}}
{{- regexFind "^1\\.[0-9]+" $v -}}
{{- end -}}
{{- end -}}

{{/* Image digests the chart knows, per release (files/image-digests.yaml). */}}
{{- define "cilium.knownDigest" -}}
{{- $ctx := index . 0 -}}
{{- $image := index . 1 -}}
{{- $table := $ctx.Files.Get "files/image-digests.yaml" | fromYaml -}}
{{- $release := get $table (include "cilium.version" $ctx) | default dict -}}
{{- get $release $image | default "" -}}
{{- end -}}

{{/*
Replace the registry (first path element) of a repository with imageRegistry. The first
element is a registry when it has a dot or a colon or is "localhost"; otherwise (Docker Hub
short names) imageRegistry is prepended.
*/}}
{{- define "cilium.repository" -}}
{{- $ctx := index . 0 -}}
{{- $repo := index . 1 -}}
{{- $registry := $ctx.Values.imageRegistry | trimSuffix "/" -}}
{{- if $registry -}}
{{- $parts := splitList "/" $repo -}}
{{- $first := first $parts -}}
{{- if and (gt (len $parts) 1) (or (contains "." $first) (contains ":" $first) (eq $first "localhost")) -}}
{{- printf "%s/%s" $registry (rest $parts | join "/") -}}
{{- else -}}
{{- printf "%s/%s" $registry $repo -}}
{{- end -}}
{{- else -}}
{{- $repo -}}
{{- end -}}
{{- end -}}

{{/*
Full image reference of a Cilium-versioned image.
Arguments: (list $ <image values> <digest table name>). An empty tag means the release's
tag; an empty digest means the known digest of that release, used only with the release's
own tag so that a different tag never gets a mismatched digest.
*/}}
{{- define "cilium.versionedImage" -}}
{{- $ctx := index . 0 -}}
{{- $img := index . 1 -}}
{{- $name := index . 2 -}}
{{- if $img.override -}}
{{- $img.override -}}
{{- else -}}
{{- $releaseTag := printf "v%s" (include "cilium.version" $ctx) -}}
{{- $tag := $img.tag | default $releaseTag -}}
{{- $digest := $img.digest | default "" -}}
{{- if and (not $digest) (eq $tag $releaseTag) -}}
{{- $digest = include "cilium.knownDigest" (list $ctx $name) -}}
{{- end -}}
{{- include "cilium.imageRef" (list $ctx $img.repository $tag $digest $img.useDigest) -}}
{{- end -}}
{{- end -}}

{{/* Image reference of an image with its own fixed tag (hubble-ui). */}}
{{- define "cilium.fixedImage" -}}
{{- $ctx := index . 0 -}}
{{- $img := index . 1 -}}
{{- if $img.override -}}
{{- $img.override -}}
{{- else -}}
{{- include "cilium.imageRef" (list $ctx $img.repository ($img.tag | default "") ($img.digest | default "") $img.useDigest) -}}
{{- end -}}
{{- end -}}

{{/* repository[:tag][@digest] with the registry override applied. */}}
{{- define "cilium.imageRef" -}}
{{- $ctx := index . 0 -}}
{{- $repo := include "cilium.repository" (list $ctx (index . 1)) -}}
{{- $tag := index . 2 -}}
{{- $digest := index . 3 -}}
{{- $useDigest := index . 4 -}}
{{- $ref := $repo -}}
{{- if $tag -}}{{- $ref = printf "%s:%s" $ref $tag -}}{{- end -}}
{{- if and $useDigest $digest -}}{{- $ref = printf "%s@%s" $ref $digest -}}{{- end -}}
{{- $ref -}}
{{- end -}}

{{/* The operator's cloud flavour: aws with ENI, generic otherwise. */}}
{{- define "cilium.operator.cloud" -}}
{{- if .Values.eni.enabled -}}aws{{- else -}}generic{{- end -}}
{{- end -}}

{{/* Operator image: <repository>-<cloud><suffix>:<tag>@<digest>. */}}
{{- define "cilium.operator.image" -}}
{{- $img := .Values.operator.image -}}
{{- if $img.override -}}
{{- $img.override -}}
{{- else -}}
{{- $cloud := include "cilium.operator.cloud" . -}}
{{- $repo := printf "%s-%s%s" $img.repository $cloud ($img.suffix | default "") -}}
{{- $releaseTag := printf "v%s" (include "cilium.version" .) -}}
{{- $tag := $img.tag | default $releaseTag -}}
{{- $digest := index $img (printf "%sDigest" $cloud) | default "" -}}
{{- if and (not $digest) (eq $tag $releaseTag) (not $img.suffix) -}}
{{- $digest = include "cilium.knownDigest" (list . (printf "operator-%s" $cloud)) -}}
{{- end -}}
{{- include "cilium.imageRef" (list . $repo $tag $digest $img.useDigest) -}}
{{- end -}}
{{- end -}}

{{/* Priority class: the user's, else the critical one when enabled. */}}
{{- define "cilium.priorityClass" -}}
{{- $ctx := index . 0 -}}
{{- $given := index . 1 -}}
{{- $critical := index . 2 -}}
{{- if $given -}}
{{- $given -}}
{{- else if $ctx.Values.enableCriticalPriorityClass -}}
{{- $critical -}}
{{- end -}}
{{- end -}}

{{/* kubeProxyReplacement as "true" or "false"; anything else is an error. */}}
{{- define "cilium.kubeProxyReplacement" -}}
{{- $kpr := toString .Values.kubeProxyReplacement -}}
{{- if or (eq $kpr "<nil>") (eq $kpr "") -}}{{- $kpr = "false" -}}{{- end -}}
{{- if not (has $kpr (list "true" "false")) -}}
{{- fail (printf "kubeProxyReplacement must be \"true\" or \"false\", not %q" $kpr) -}}
{{- end -}}
{{- $kpr -}}
{{- end -}}

{{/*
Environment variables that point a component at k8sServiceHost/k8sServicePort instead of
the kubernetes Service (needed when there is no kube-proxy); the host may instead come
from a ConfigMap key (k8sServiceHostRef).
*/}}
{{- define "cilium.k8sServiceEnv" -}}
{{- $ref := .Values.k8sServiceHostRef | default dict -}}
{{- if .Values.k8sServiceHost }}
- name: KUBERNETES_SERVICE_HOST
  value: {{ .Values.k8sServiceHost | quote }}
- name: KUBERNETES_SERVICE_PORT
  value: {{ .Values.k8sServicePort | quote }}
{{- else if and $ref.name $ref.key }}
- name: KUBERNETES_SERVICE_HOST
  valueFrom:
    configMapKeyRef:
      name: {{ $ref.name }}
      key: {{ $ref.key }}
- name: KUBERNETES_SERVICE_PORT
  value: {{ .Values.k8sServicePort | quote }}
{{- end }}
{{- end -}}

{{/* "true" when the components reach the API server at an address of their own (k8sServiceHost, or k8sServiceHostRef). */}}
{{- define "cilium.k8sServiceAddress" -}}
{{- $ref := .Values.k8sServiceHostRef | default dict -}}
{{- if or .Values.k8sServiceHost (and $ref.name $ref.key) -}}true{{- else -}}false{{- end -}}
{{- end -}}

{{/* Whether the agent reads policy secrets only from tls.secretsNamespace. */}}
{{- define "cilium.secretsNamespaceOnly" -}}
{{- if and .Values.tls.readSecretsOnlyFromSecretsNamespace .Values.tls.secretsNamespace.name -}}true{{- else -}}false{{- end -}}
{{- end -}}

{{/* Whether the operator copies policy secrets into tls.secretsNamespace. */}}
{{- define "cilium.secretSync" -}}
{{- if and (eq (include "cilium.secretsNamespaceOnly" .) "true") .Values.tls.secretSync.enabled -}}true{{- else -}}false{{- end -}}
{{- end -}}

{{/* Whether Hubble TLS certificates are generated by Helm. */}}
{{- define "cilium.hubbleHelmCerts" -}}
{{- if and .Values.hubble.enabled .Values.hubble.tls.enabled .Values.hubble.tls.auto.enabled -}}true{{- else -}}false{{- end -}}
{{- end -}}

{{/*
The CA that signs the Hubble certificates, computed once per render and cached on the root
context: the user's tls.ca, else the cilium-ca Secret already in the cluster (so upgrades
keep the trust chain), else a new one.
*/}}
{{- define "cilium.ca.setup" -}}
{{- if not .ciliumCA -}}
{{- $ca := dict -}}
{{- if and .Values.tls.ca.cert .Values.tls.ca.key -}}
{{- $ca = buildCustomCert .Values.tls.ca.cert .Values.tls.ca.key -}}
{{- else -}}
{{- $existing := lookup "v1" "Secret" (include "cilium.namespace" .) "cilium-ca" -}}
{{- if and $existing (index ($existing.data | default dict) "ca.crt") (index ($existing.data | default dict) "ca.key") -}}
{{- $ca = buildCustomCert (index $existing.data "ca.crt") (index $existing.data "ca.key") -}}
{{- else -}}
{{- $ca = genCA "Cilium CA" (int .Values.tls.ca.certValidityDuration) -}}
{{- end -}}
{{- end -}}
{{- $_ := set . "ciliumCA" $ca -}}
{{- end -}}
{{- end -}}

{{/*
A kubernetes.io/tls Secret signed by the Hubble CA.
Arguments: (list $ <secret name> <common name> <extra DNS names> <extra IPs>).
*/}}
{{- define "cilium.tlsSecret" -}}
{{- $ctx := index . 0 -}}
{{- $name := index . 1 -}}
{{- $cn := index . 2 -}}
{{- $dns := prepend (index . 3 | default list) $cn -}}
{{- $ips := index . 4 | default list -}}
{{- $_ := include "cilium.ca.setup" $ctx -}}
{{- $cert := genSignedCert $cn $ips $dns (int $ctx.Values.hubble.tls.auto.certValidityDuration) $ctx.ciliumCA -}}
apiVersion: v1
kind: Secret
metadata:
  name: {{ $name }}
  namespace: {{ include "cilium.namespace" $ctx }}
  labels:
    {{- include "cilium.labels" $ctx | nindent 4 }}
  {{- with $ctx.Values.hubble.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
type: kubernetes.io/tls
data:
  ca.crt: {{ $ctx.ciliumCA.Cert | b64enc }}
  tls.crt: {{ $cert.Cert | b64enc }}
  tls.key: {{ $cert.Key | b64enc }}
{{- end -}}

{{/* Validate durations ("5m0s") early, with the key name in the error. */}}
{{- define "cilium.duration" -}}
{{- $key := index . 0 -}}
{{- $value := toString (index . 1) -}}
{{- if not (regexMatch "^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$" $value) -}}
{{- fail (printf "%s: %q is not a duration like \"5m0s\"" $key $value) -}}
{{- end -}}
{{- $value -}}
{{- end -}}

{{/*
Fail closed on upstream keys this chart does not model yet (unmodelled-keys.txt, lines
"key  # reason"): the chart would ignore them and a feature the user asked for would silently
stay off. Helm drops keys set to null, so only keys given a value count. On the 1.18 line a key
set to exactly upstream's default (unmodelled-defaults.yaml) is accepted: upstream then renders
what this chart renders, so nothing is ignored.
*/}}
{{- define "cilium.failOnUnmodelled" -}}
{{- $found := list -}}
{{- $defaults := dict -}}
{{- if eq (include "cilium.is118" .) "true" -}}
{{- $defaults = .Files.Get "unmodelled-defaults.yaml" | fromYaml | default dict -}}
{{- end -}}
{{- range $line := splitList "\n" (.Files.Get "unmodelled-keys.txt") -}}
{{- $key := trim (first (splitList "#" $line)) -}}
{{- if $key -}}
{{- $node := $.Values -}}
{{- $default := $defaults -}}
{{- $hasDefault := true -}}
{{- $present := true -}}
{{- range $part := splitList "." $key -}}
{{- if and $present (kindIs "map" $node) (hasKey $node $part) -}}
{{- $node = index $node $part -}}
{{- if and $hasDefault (kindIs "map" $default) (hasKey $default $part) -}}
{{- $default = index $default $part -}}
{{- else -}}
{{- $hasDefault = false -}}
{{- end -}}
{{- else -}}
{{- $present = false -}}
{{- end -}}
{{- end -}}
{{- if and $present (not (kindIs "invalid" $node)) -}}
{{- if not (and $hasDefault (include "cilium.unmodelled.isDefault" (list $node $default))) -}}
{{- $found = append $found $key -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if $found -}}
{{- fail (printf "these upstream chart keys are not modelled by this chart and would be ignored: %s (remove them, or set the agent options through extraConfig)" (join ", " $found)) -}}
{{- end -}}
{{- end -}}

{{/*
"true" when every value the user gave under an unmodelled key equals upstream's default at
the same path. Arguments: (list <user value> <upstream default>).
*/}}
{{- define "cilium.unmodelled.isDefault" -}}
{{- $node := index . 0 -}}
{{- $default := index . 1 -}}
{{- if kindIs "map" $node -}}
{{- $same := kindIs "map" $default -}}
{{- if $same -}}
{{- range $k, $v := $node -}}
{{- if and $same (not (kindIs "invalid" $v)) -}}
{{- if not (and (hasKey $default $k) (include "cilium.unmodelled.isDefault" (list $v (index $default $k)))) -}}
{{- $same = false -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if $same -}}true{{- end -}}
{{- else if eq (toJson $node) (toJson $default) -}}
{{- print "true" -}}
{{- end -}}
{{- end -}}

{{/*
A pod's topologySpreadConstraints: each constraint without a labelSelector selects the pods of
its own workload. Arguments: (list <constraints> <the workload's selector labels>).
*/}}
{{- define "cilium.topologySpreadConstraints" -}}
{{- $out := list -}}
{{- range $c := index . 0 -}}
{{- if not $c.labelSelector -}}
{{- $c = merge (dict "labelSelector" (dict "matchLabels" (index $ 1))) $c -}}
{{- end -}}
{{- $out = append $out $c -}}
{{- end -}}
{{- with $out -}}
topologySpreadConstraints:
{{- toYaml . | nindent 2 }}
{{- end -}}
{{- end -}}

{{/* The CNI chaining mode: cni.chainingMode, else generic-veth when cni.chainingTarget is set,
else "none". */}}
{{- define "cilium.cni.chainingMode" -}}
{{- if not (kindIs "invalid" .Values.cni.chainingMode) -}}
{{- .Values.cni.chainingMode -}}
{{- else if not (kindIs "invalid" .Values.cni.chainingTarget) -}}
generic-veth
{{- else -}}
none
{{- end -}}
{{- end -}}

{{/* "true" when Envoy runs as the cilium-envoy DaemonSet (envoy.enabled, null = yes). */}}
{{- define "cilium.envoy.daemonset" -}}
{{- $on := .Values.envoy.enabled -}}
{{- if kindIs "invalid" $on -}}{{- $on = true -}}{{- end -}}
{{- and $on .Values.l7Proxy (not .Values.preflight.enabled) -}}
{{- end -}}

{{/*
The "annotations:" block of an object's metadata (indented for metadata's children): the
union of the given maps, an earlier map winning on a shared key (an object's own
annotations before its component's). Nothing when every map is empty.
*/}}
{{- define "cilium.metaAnnotations" -}}
{{- $out := dict -}}
{{- range . -}}
{{- $out = merge $out (. | default dict) -}}
{{- end -}}
{{- with $out -}}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end -}}
{{- end -}}

{{/*
Container volumeMounts (list items) of extraHostPathMounts entries ({name, mountPath,
hostPath, hostPathType, readOnly, mountPropagation}); hostPathVolumes gives their volumes.
*/}}
{{- define "cilium.hostPathMounts" -}}
{{- range . }}
- name: {{ .name }}
  mountPath: {{ .mountPath }}
  readOnly: {{ .readOnly | default false }}
  {{- with .mountPropagation }}
  mountPropagation: {{ . }}
  {{- end }}
{{- end }}
{{- end -}}

{{- define "cilium.hostPathVolumes" -}}
{{- range . }}
- name: {{ .name }}
  hostPath:
    path: {{ .hostPath }}
    {{- with .hostPathType }}
    type: {{ . }}
    {{- end }}
{{- end }}
{{- end -}}

{{/*
With tls.caBundle.enabled, the projected-volume source (list item) that puts the bundle's
CA certificates at <path> instead of the ca.crt of the component's certificate Secret: a
ConfigMap (or, with useSecret, a Secret) named tls.caBundle.name, key tls.caBundle.key.
Arguments: (list $ <path> <optional>). Nothing without a CA bundle.
*/}}
{{- define "cilium.caBundleSource" -}}
{{- $ctx := index . 0 -}}
{{- $bundle := $ctx.Values.tls.caBundle -}}
{{- if $bundle.enabled }}
- {{ $bundle.useSecret | ternary "secret" "configMap" }}:
    name: {{ $bundle.name }}
    {{- if index . 2 }}
    optional: true
    {{- end }}
    items:
    - key: {{ $bundle.key }}
      path: {{ index . 1 }}
{{- end }}
{{- end -}}
