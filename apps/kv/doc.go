// Package kv is molt's key-value service: a Store with memcached semantics
// and a Server that speaks the memcached text protocol on any net.Listener
// (gVisor netstack's gonet listeners in the kernel, package net on a host).
//
// Synopsis:
//
//	st, err := kv.NewStore(kv.Config{MaxBytes: 64 << 20})
//	srv := kv.NewServer(st, kv.ServerConfig{})
//	go srv.Serve(listener)
//	...
//	srv.Shutdown(ctx)  // stop serving; the store stays intact
//	st.Save(w)         // versioned, checksummed snapshot for a self-update
//	st2.Restore(r)     // in the next kernel
//
// # Protocol
//
// The text protocol of memcached's doc/protocol.txt: get, gets, gat, gats,
// set, add, replace, append, prepend, cas, delete, incr, decr, touch,
// flush_all [delay], stats [settings|reset], version, verbosity and quit,
// with noreply where the protocol has it. Replies to malformed input are
// the protocol's error lines: ERROR for an unknown command or a wrong
// argument count, CLIENT_ERROR <reason> for a malformed argument,
// SERVER_ERROR <reason> when a valid request cannot be carried out. The
// binary and meta protocols are not implemented; a connection that starts
// with a binary request gets one SERVER_ERROR line and is closed.
//
// Expiry times follow memcached: 0 never expires, a negative value has
// already expired, up to 30 days (2592000) is relative seconds, anything
// larger an absolute Unix time. Times are whole seconds of the Store's
// clock (Config.Now), which tests replace.
//
// noreply suppresses the reply of a command that was parsed, including a
// SERVER_ERROR from carrying it out; it does not suppress the error lines
// for a command line that could not be parsed (ERROR, CLIENT_ERROR bad
// command line format, bad data chunk, line too long), since then noreply
// itself may not have been read.
//
// # Limits
//
// Per Store: MaxBytes (default 64 MiB) bounds key + value + 64 bytes per
// item, with least-recently-used eviction; MaxItemSize (default 1 MiB)
// bounds a value (SERVER_ERROR object too large for cache, and the data
// block is read and dropped). Per Server: MaxConns (default 1024; extra
// connections get SERVER_ERROR too many open connections and are closed),
// MaxLineLen (default 2048 bytes; a longer non-retrieval command line gets
// CLIENT_ERROR line too long and the connection is closed; retrieval keys
// are streamed so long multi-gets work), IdleTimeout, ReadTimeout and
// WriteTimeout (5 min, 30 s, 30 s).
//
// # Concurrency
//
// Each connection is served by its own goroutine with its own buffers. The
// Store has one mutex, a leaf lock never held across I/O; stored values are
// immutable, so a get copies only a slice header under the lock and writes
// the value to the network after releasing it. A client that stops reading
// or sending stalls only its own goroutine, until a timeout closes it.
//
// Lock order (outermost first): Server.mu, Store.mu. They are never held
// together today.
//
// # Snapshots
//
// Store.Save and Store.Restore carry the contents across a self-update in
// the format documented in save_restore.go and docs/kv.md: magic, a
// format version separate from molt's release version, a body length so
// the snapshot can sit inside a larger image, and a CRC-64. State is the
// plain saved form, kept apart from the live Store: Restore rebuilds the
// live object from a State plus the new store's own Config.
package kv
