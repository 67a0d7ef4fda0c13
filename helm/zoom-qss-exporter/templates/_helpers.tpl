{{/*
Chart name, truncated to the 63 characters of a DNS label.
*/}}
{{- define "zoom-qss-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name: the release name, followed by the chart name unless the release name
already contains it; truncated to 63 characters.
*/}}
{{- define "zoom-qss-exporter.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "zoom-qss-exporter.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Namespace of every namespaced object (namespaceOverride, else the release's).
*/}}
{{- define "zoom-qss-exporter.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every object.
*/}}
{{- define "zoom-qss-exporter.labels" -}}
helm.sh/chart: {{ include "zoom-qss-exporter.chart" . }}
{{ include "zoom-qss-exporter.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: zoom-qss-exporter
{{- end }}

{{/*
Labels that select the exporter's pods (Deployment, Service, PDB, NetworkPolicy, spread).
*/}}
{{- define "zoom-qss-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "zoom-qss-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Name of the ServiceAccount the pod runs as.
*/}}
{{- define "zoom-qss-exporter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "zoom-qss-exporter.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Container image: registry/repository, then @digest or :tag (default: the chart's appVersion).
*/}}
{{- define "zoom-qss-exporter.image" -}}
{{- $repository := .Values.image.repository }}
{{- if .Values.image.registry }}
{{- $repository = printf "%s/%s" .Values.image.registry .Values.image.repository }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
Name of the Secret holding the secret token (existingSecret, else one named like the fullname:
created by the chart from secretToken, or by the user).
*/}}
{{- define "zoom-qss-exporter.secretName" -}}
{{- default (include "zoom-qss-exporter.fullname" .) .Values.existingSecret }}
{{- end }}

{{/*
"true" when the chart creates the Secret: from secretToken (and config.privacy.hashSalt). Fails
on combinations that cannot work, with a message naming the values to change.
*/}}
{{- define "zoom-qss-exporter.createSecret" -}}
{{- $privacy := .Values.config.privacy }}
{{- if and .Values.existingSecret .Values.secretToken }}
{{- fail "set either secretToken or existingSecret, not both" }}
{{- end }}
{{- if and .Values.existingSecret $privacy.hashSalt }}
{{- fail "with existingSecret, keep the hash salt in that Secret and name its key in config.privacy.existingSecretHashSaltKey instead of config.privacy.hashSalt" }}
{{- end }}
{{- if and $privacy.existingSecretHashSaltKey (not .Values.existingSecret) }}
{{- fail "config.privacy.existingSecretHashSaltKey needs existingSecret" }}
{{- end }}
{{- if and $privacy.hashSalt (not .Values.secretToken) (not .Values.config.zoom.skipSignatureVerification) }}
{{- fail "config.privacy.hashSalt is set but secretToken is empty: set secretToken too, or keep both in a Secret of your own (existingSecret, config.privacy.existingSecretHashSaltKey)" }}
{{- end }}
{{- if and (not .Values.existingSecret) (or .Values.secretToken $privacy.hashSalt) }}true{{ end }}
{{- end }}

{{/*
"true" when the container gets ZOOM_WEBHOOK_SECRET_TOKEN: always, except with
skipSignatureVerification and no token given.
*/}}
{{- define "zoom-qss-exporter.hasToken" -}}
{{- if or .Values.secretToken .Values.existingSecret (not .Values.config.zoom.skipSignatureVerification) }}true{{ end }}
{{- end }}

{{/*
The remote-write headers as ZOOM_QSS_REMOTE_WRITE_HEADER wants them: one "Name: value" a line.
*/}}
{{- define "zoom-qss-exporter.remoteWriteHeaders" -}}
{{- $lines := list }}
{{- range $name, $value := .headers }}
{{- $lines = append $lines (printf "%s: %s" $name $value) }}
{{- end }}
{{- join "\n" $lines }}
{{- end }}

{{/*
"true" when remote write needs files from Secrets (bearer token, password, TLS), mounted
read-only at /etc/zoom-qss-exporter/remote-write. Fails on settings that cannot work.
*/}}
{{- define "zoom-qss-exporter.remoteWriteFiles" -}}
{{- $rw := .Values.config.remoteWrite }}
{{- if and $rw.bearerToken.secretName $rw.basicAuth.username }}
{{- fail "config.remoteWrite: set either bearerToken.secretName or basicAuth, not both" }}
{{- end }}
{{- if and $rw.basicAuth.passwordSecretName (not $rw.basicAuth.username) }}
{{- fail "config.remoteWrite.basicAuth.passwordSecretName needs basicAuth.username" }}
{{- end }}
{{- if and $rw.tls.keyKey (not $rw.tls.certKey) }}
{{- fail "config.remoteWrite.tls.keyKey needs tls.certKey (a client certificate)" }}
{{- end }}
{{- if and $rw.url (or $rw.bearerToken.secretName $rw.basicAuth.passwordSecretName (and $rw.tls.secretName (or $rw.tls.caKey $rw.tls.certKey))) }}true{{ end }}
{{- end }}

{{/*
"true" when remote write keeps its write-ahead log on a volume of the pod, mounted at
/var/lib/zoom-qss-exporter/wal: config.remoteWrite.url with wal.enabled.
*/}}
{{- define "zoom-qss-exporter.wal" -}}
{{- $rw := .Values.config.remoteWrite }}
{{- if and $rw.url $rw.wal.enabled }}true{{ end }}
{{- end }}

{{/*
"true" when that volume is a PersistentVolumeClaim (wal.persistence.enabled) rather than an
emptyDir.
*/}}
{{- define "zoom-qss-exporter.walClaim" -}}
{{- if and (include "zoom-qss-exporter.wal" .) .Values.config.remoteWrite.wal.persistence.enabled }}true{{ end }}
{{- end }}

{{/*
Name of the write-ahead log's claim: existingClaim, else the one the chart creates.
*/}}
{{- define "zoom-qss-exporter.walClaimName" -}}
{{- default (printf "%s-wal" (include "zoom-qss-exporter.fullname" .)) .Values.config.remoteWrite.wal.persistence.existingClaim }}
{{- end }}

{{/*
The Deployment's strategy: .Values.strategy, else RollingUpdate with a surge pod, or Recreate
with the write-ahead log's claim. Fails when a rollout would start a pod on that claim while the
old one still uses it: a ReadWriteOnce claim cannot be mounted on two nodes (the rollout would
wait for ever), and two processes must never share one log.
*/}}
{{- define "zoom-qss-exporter.strategy" -}}
{{- $strategy := .Values.strategy }}
{{- $claim := include "zoom-qss-exporter.walClaim" . }}
{{- if not $strategy }}
{{- if $claim }}
{{- $strategy = dict "type" "Recreate" }}
{{- else }}
{{- $strategy = dict "type" "RollingUpdate" "rollingUpdate" (dict "maxSurge" 1 "maxUnavailable" 0) }}
{{- end }}
{{- end }}
{{- if and $claim (ne (toString (default "RollingUpdate" $strategy.type)) "Recreate") }}
{{- $surge := toString (dig "rollingUpdate" "maxSurge" "25%" $strategy) }}
{{- if not (has $surge (list "0" "0%")) }}
{{- fail "config.remoteWrite.wal.persistence: a RollingUpdate with a surge pod starts the new pod while the old one still uses the write-ahead log's claim: a ReadWriteOnce claim cannot be attached on another node (the rollout would never finish), and two processes must not share one log. Leave strategy empty (Recreate is then the default), or set strategy.type: Recreate, or strategy.rollingUpdate.maxSurge: 0 with maxUnavailable: 1" }}
{{- end }}
{{- end }}
{{- toYaml $strategy }}
{{- end }}

{{/*
The quality analytics' files that the chart renders into its ConfigMap <fullname>-analytics
(templates/analytics.yaml), mounted at /etc/zoom-qss-exporter/analytics; each is empty when there
is nothing to render or analytics is off. They are written as JSON, which YAML reads as it is:
the exporter reads YAML 1.1 (PyYAML), where some strings that toYaml leaves unquoted are not
strings ("=", "<<"), and every JSON string is quoted. A leading comment says where they come from.
*/}}
{{- define "zoom-qss-exporter.analyticsHeader" -}}
# Rendered by the zoom-qss-exporter Helm chart from config.analytics.{{ . }}: change it there.
{{- end }}

{{/*
sites.yaml, from config.analytics.sites. Fails on what the exporter would refuse and the schema
cannot tell: a name given twice, a reserved name, sites together with existingSitesConfigMap.
*/}}
{{- define "zoom-qss-exporter.analyticsSites" -}}
{{- $analytics := .Values.config.analytics }}
{{- if and $analytics.enabled $analytics.sites }}
{{- if $analytics.existingSitesConfigMap }}
{{- fail "config.analytics: set either sites or existingSitesConfigMap, not both" }}
{{- end }}
{{- $names := dict }}
{{- range $analytics.sites }}
{{- $name := trim .name }}
{{- if has (lower $name) (list "external" "unknown" "other") }}
{{- fail (printf "config.analytics.sites: %q is reserved (the exporter uses external, unknown and other)" $name) }}
{{- end }}
{{- if hasKey $names $name }}
{{- fail (printf "config.analytics.sites: site %q is given twice" $name) }}
{{- end }}
{{- $_ := set $names $name true }}
{{- end }}
{{- include "zoom-qss-exporter.analyticsHeader" "sites" }}
{{ toPrettyJson (dict "sites" $analytics.sites) }}
{{- end }}
{{- end }}

{{/*
accounts.yaml, from config.analytics.accounts. Fails on an id given twice.
*/}}
{{- define "zoom-qss-exporter.analyticsAccounts" -}}
{{- $analytics := .Values.config.analytics }}
{{- if and $analytics.enabled $analytics.accounts }}
{{- $ids := dict }}
{{- range $analytics.accounts }}
{{- if hasKey $ids .id }}
{{- fail (printf "config.analytics.accounts: id %q is given twice" .id) }}
{{- end }}
{{- $_ := set $ids .id true }}
{{- end }}
{{- include "zoom-qss-exporter.analyticsHeader" "accounts" }}
{{ toPrettyJson (dict "accounts" $analytics.accounts) }}
{{- end }}
{{- end }}

{{/*
quality.yaml, from config.analytics.thresholds (the schema requires both sections with every
key). JSON writes a number under 1e-6 with an exponent and no point (1e-7), which YAML 1.1
reads as a string: it becomes 1.0e-7.
*/}}
{{- define "zoom-qss-exporter.analyticsThresholds" -}}
{{- $analytics := .Values.config.analytics }}
{{- if and $analytics.enabled $analytics.thresholds }}
{{- include "zoom-qss-exporter.analyticsHeader" "thresholds" }}
{{ regexReplaceAll "([^0-9.])(-?[0-9]+)([eE][-+]?[0-9]+)" (toPrettyJson $analytics.thresholds) "${1}${2}.0${3}" }}
{{- end }}
{{- end }}

{{/*
Name of the chart's analytics ConfigMap.
*/}}
{{- define "zoom-qss-exporter.analyticsConfigMapName" -}}
{{- printf "%s-analytics" (include "zoom-qss-exporter.fullname" .) }}
{{- end }}

{{/*
"true" when the pod mounts the analytics volume at /etc/zoom-qss-exporter/analytics: a file of
the chart's ConfigMap, or the sites of existingSitesConfigMap.
*/}}
{{- define "zoom-qss-exporter.analyticsVolume" -}}
{{- $analytics := .Values.config.analytics }}
{{- if or (include "zoom-qss-exporter.analyticsSites" .) (include "zoom-qss-exporter.analyticsAccounts" .) (include "zoom-qss-exporter.analyticsThresholds" .) (and $analytics.enabled $analytics.existingSitesConfigMap) }}true{{ end }}
{{- end }}
