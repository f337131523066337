package config

import (
	"fmt"
	"net/url"
	"strings"
)

// Azurite's well-known development account (documented by Microsoft; not a
// secret, but still kept out of logs like any account key).
const (
	devAccountName = "devstoreaccount1"
	devAccountKey  = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// Storage is AzureWebJobsStorage, parsed. Endpoints are always explicit so
// every client is built the same way whatever form the setting had.
type Storage struct {
	AccountName string `json:"accountName"`
	BlobURL     string `json:"blobURL"`
	QueueURL    string `json:"queueURL"`
	TableURL    string `json:"tableURL"`
	// Development is true for UseDevelopmentStorage=true.
	Development bool `json:"development"`

	AccountKey string `json:"-"` // secret
	SAS        string `json:"-"` // secret
}

// ConnectionString returns a full connection string with explicit
// endpoints, accepted by azblob, azqueue and aztables. It holds the account
// key: never log it.
func (s Storage) ConnectionString() string {
	var b strings.Builder
	b.WriteString("DefaultEndpointsProtocol=" + scheme(s.BlobURL) + ";AccountName=" + s.AccountName + ";")
	if s.AccountKey != "" {
		b.WriteString("AccountKey=" + s.AccountKey + ";")
	}
	if s.SAS != "" {
		b.WriteString("SharedAccessSignature=" + s.SAS + ";")
	}
	b.WriteString("BlobEndpoint=" + s.BlobURL + ";QueueEndpoint=" + s.QueueURL + ";TableEndpoint=" + s.TableURL + ";")
	return b.String()
}

func scheme(u string) string {
	if strings.HasPrefix(u, "http://") {
		return "http"
	}
	return "https"
}

// ParseStorage parses an Azure Storage connection string:
// "UseDevelopmentStorage=true" (Azurite on 127.0.0.1:10000-10002) or
// "DefaultEndpointsProtocol=…;AccountName=…;AccountKey=…[;EndpointSuffix=…]
// [;BlobEndpoint=…;QueueEndpoint=…;TableEndpoint=…]". Errors never repeat
// the value, which may hold a key.
func ParseStorage(cs string) (Storage, error) {
	kv := map[string]string{}
	for _, part := range strings.Split(strings.TrimSpace(cs), ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok || k == "" {
			return Storage{}, fmt.Errorf("not a connection string: each part must be Key=Value")
		}
		kv[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
	if len(kv) == 0 {
		return Storage{}, fmt.Errorf("empty connection string")
	}
	if strings.EqualFold(kv["usedevelopmentstorage"], "true") {
		return Storage{
			AccountName: devAccountName,
			AccountKey:  devAccountKey,
			BlobURL:     "http://127.0.0.1:10000/" + devAccountName,
			QueueURL:    "http://127.0.0.1:10001/" + devAccountName,
			TableURL:    "http://127.0.0.1:10002/" + devAccountName,
			Development: true,
		}, nil
	}
	s := Storage{AccountName: kv["accountname"], AccountKey: kv["accountkey"], SAS: strings.TrimPrefix(kv["sharedaccesssignature"], "?")}
	if s.AccountName == "" {
		return Storage{}, fmt.Errorf("AccountName is missing")
	}
	if s.AccountKey == "" && s.SAS == "" {
		return Storage{}, fmt.Errorf("neither AccountKey nor SharedAccessSignature is set")
	}
	proto := kv["defaultendpointsprotocol"]
	if proto == "" {
		proto = "https"
	}
	if proto != "https" && proto != "http" {
		return Storage{}, fmt.Errorf("DefaultEndpointsProtocol must be https or http, got %q", proto)
	}
	suffix := kv["endpointsuffix"]
	if suffix == "" {
		suffix = "core.windows.net"
	}
	for _, e := range []struct {
		key, service string
		dst          *string
	}{
		{"blobendpoint", "blob", &s.BlobURL},
		{"queueendpoint", "queue", &s.QueueURL},
		{"tableendpoint", "table", &s.TableURL},
	} {
		v := kv[e.key]
		if v == "" {
			v = fmt.Sprintf("%s://%s.%s.%s", proto, s.AccountName, e.service, suffix)
		}
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.User != nil {
			return Storage{}, fmt.Errorf("%s is not an http(s) URL", e.service+" endpoint")
		}
		*e.dst = strings.TrimRight(v, "/")
	}
	return s, nil
}
