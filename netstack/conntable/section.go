package conntable

import "github.com/molt-os/molt/updater/handoff"

// MaxEncodedSize caps the conn-table section. It is sized for about a
// thousand connections with full send and receive queues (a 12 MiB section
// leaves 4 MiB of the 16 MiB handoff region for everything else); an
// exporter that would write more should drain its queues first or refuse
// the update.
const MaxEncodedSize = 12 << 20

// SectionType is the handoff section type for connection tables
// (handoff.TypeConnTable, payload = Encode's output, section version =
// Version). Its decoder returns a *Table.
func SectionType() handoff.SectionType {
	return handoff.SectionType{
		Type:   handoff.TypeConnTable,
		MaxLen: MaxEncodedSize,
		Codecs: []handoff.Codec{{
			Version: Version,
			Decode:  func(p []byte) (any, error) { return Decode(p) },
		}},
	}
}
