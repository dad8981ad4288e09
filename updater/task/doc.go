// Package task is molt's task model and process table (DESIGN §4): the
// contract a long-lived service implements to keep its state across a
// kernel self-update, the quiesce coordinator, and the two handoff sections
// that carry tasks (process-table, type 3; task-state, type 4).
// docs/tasks.md specifies the payloads byte by byte and the life cycle.
//
// The package is plain Go: no kernel, netstack or gVisor imports, so it is
// tested on the host with -race. Sockets are named by SocketID (the same
// number as netstack.SocketID); a SocketTable adapter, given to each task
// by the kernel, turns IDs into live net.Listener/net.Conn/net.PacketConn
// values and back.
//
// The kernel drives a Table like this:
//
//	cold boot:  tab.Register(spec, task)...; tab.Start()
//	update:     tab.QuiesceAll(ctx, 0)        // on error: already resumed, keep serving
//	            tab.Save(enc, targets)        // on error: tab.ResumeAll(), keep serving
//	            ... save conn tables, jump ...
//	new kernel: tab.Register(...)...; rep := tab.Restore(decoded); tab.Start()
//
// Restore matches tasks by ID and name, checks schema versions and applies
// each task's Policy when its state cannot be used; its report is plain
// data for the update report. Tasks that implement VersionSaver can write
// an older schema for an image that reads only that one (Targets).
package task
