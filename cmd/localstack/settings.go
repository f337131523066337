package main

import (
	"encoding/json"
	"fmt"
	"os"
)

// writeLocalSettings writes a local.settings.json (Core Tools format).
func writeLocalSettings(path string, values map[string]string, port int) error {
	doc := map[string]any{"IsEncrypted": false, "Values": values}
	if port != 0 {
		doc["Host"] = map[string]any{"LocalHttpPort": port}
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	return nil
}
