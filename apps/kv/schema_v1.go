//go:build kv_schema1

package kv

// writeSchema is the snapshot version this image writes: version 1, for an
// image that plays the part of an older release in tests (SchemaVersion).
const (
	writeSchema     = 1
	writeSchemaText = "1"
)
