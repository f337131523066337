package runner

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// LocalSettings is local.settings.json, as Core Tools reads it.
type LocalSettings struct {
	IsEncrypted bool              `json:"IsEncrypted"`
	Values      map[string]string `json:"Values"`
	Host        struct {
		LocalHTTPPort int `json:"LocalHttpPort"`
	} `json:"Host"`
}

// ReadLocalSettings reads a local.settings.json file. Values must be strings,
// as Core Tools requires; an encrypted file is refused because only Core
// Tools holds the key.
func ReadLocalSettings(path string) (*LocalSettings, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read settings: %w", err)
	}
	var s LocalSettings
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s is not valid local.settings.json (Values must be an object of strings): %w", path, err)
	}
	if s.IsEncrypted {
		return nil, fmt.Errorf("%s is encrypted; decrypt it with `func settings decrypt` or set IsEncrypted to false", path)
	}
	return &s, nil
}

// environ is the process environment as a map.
func environ() map[string]string {
	m := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

var settingRef = regexp.MustCompile(`%([^%]+)%`)

// resolve replaces every %NAME% in s with the app setting NAME, as the host
// resolves binding expressions. An unknown name is an error, as it makes the
// host refuse to index the function.
func resolve(s string, settings map[string]string) (string, error) {
	var missing []string
	out := settingRef.ReplaceAllStringFunc(s, func(m string) string {
		name := m[1 : len(m)-1]
		v, ok := settings[name]
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("%q refers to app setting %s, which is not set", s, strings.Join(missing, ", "))
	}
	return out, nil
}

// developmentStorage is what UseDevelopmentStorage=true means: Azurite's
// well-known account on its default ports. The Azure SDK for Go does not
// expand the shorthand itself.
const developmentStorage = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;" +
	"AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;" +
	"BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;" +
	"TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"

// connectionString looks a binding's "connection" up the way the host does:
// the setting itself, else "AzureWebJobs<name>"; empty means AzureWebJobsStorage.
func connectionString(name string, settings map[string]string) (string, error) {
	if name == "" {
		name = "AzureWebJobsStorage"
	}
	v, ok := settings[name]
	if !ok || v == "" {
		v, ok = settings["AzureWebJobs"+name]
	}
	if !ok || v == "" {
		return "", fmt.Errorf("storage connection setting %q is not set; set it to Azurite's connection string or UseDevelopmentStorage=true", name)
	}
	if strings.EqualFold(strings.TrimRight(strings.TrimSpace(v), ";"), "UseDevelopmentStorage=true") {
		return developmentStorage, nil
	}
	return v, nil
}
