package kv

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"runtime"
	"sync/atomic"
	"time"
)

const (
	// maxTokens bounds the tokens of a non-retrieval command line; the
	// longest valid one (cas with noreply) has 7.
	maxTokens = 8
	// maxDataLen is the largest <bytes> a storage command may announce
	// (memcached's INT_MAX - 2); anything larger is a malformed line.
	maxDataLen = 1<<31 - 3
	minReadBuf = 4096
	writeBuf   = 8192
)

// Reply lines shared by several commands.
const (
	lineError         = "ERROR"
	lineBadFormat     = "CLIENT_ERROR bad command line format"
	lineBadChunk      = "CLIENT_ERROR bad data chunk"
	lineTooLong       = "CLIENT_ERROR line too long"
	lineBadDelta      = "CLIENT_ERROR invalid numeric delta argument"
	lineBadExptime    = "CLIENT_ERROR invalid exptime argument"
	lineBadDelete     = "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"
	lineBinary        = "SERVER_ERROR binary protocol is not supported"
	lineTooManyConns  = "SERVER_ERROR too many open connections"
	lineObjectTooLong = "SERVER_ERROR object too large for cache"
)

// conn is one client connection. Only its own goroutine touches it, except
// idle and nc, which Shutdown reads.
type conn struct {
	srv *Server
	st  *Store
	nc  net.Conn
	br  *bufio.Reader
	bw  *bufio.Writer

	idle atomic.Bool // waiting for a new command with nothing buffered

	toks  [maxTokens][]byte
	carry []byte // a retrieval key split across read chunks
	key   [MaxKeyLen]byte
	wdl   time.Time
	quit  bool // close after flushing

	// Quiesce and resume (quiesce.go).
	line      []byte // the raw line being executed (aliases br's buffer)
	saved     []byte // a copy of line, kept while a data block is awaited
	repoch    uint64 // server epoch read before the last read deadline was armed
	wepoch    uint64 // server epoch when the write deadline was last armed
	steady    bool   // a read that a quiesce must not interrupt is in progress
	parked    bool   // handed over to the parked set: hands off nc
	resumed   bool   // adopted from a parked state
	replay    []byte // resumed input, read before the socket
	out       []byte // resumed replies, sent first
	discard   int64  // resumed: bytes of a refused data block to skip first
	deferred  bool   // a write hit the quiesce cutoff: keep replies in unwritten
	unwritten []byte // replies the client did not take before the cutoff
}

// connReader and connWriter count traffic for stats and, for writes, keep
// a write deadline of WriteTimeout in force for each write call.
type connReader conn
type connWriter conn

func (r *connReader) Read(p []byte) (int, error) {
	if len(r.replay) > 0 {
		n := copy(p, r.replay)
		r.replay = r.replay[n:]
		return n, nil
	}
	n, err := r.nc.Read(p)
	r.srv.bytesRead.Add(uint64(n))
	return n, err
}

// Write writes p. While the server quiesces, the write deadline is the
// quiesce cutoff, and what the client has not taken by then is kept in
// unwritten (and reported as written): a client that does not read cannot
// hold up an update, and loses no reply.
func (w *connWriter) Write(p []byte) (int, error) {
	s := w.srv
	orig := len(p)
	if w.deferred {
		if s.q.Load() {
			w.unwritten = append(w.unwritten, p...)
			return orig, nil
		}
		// The quiesce was aborted: what was kept goes first.
		w.deferred = false
		p = append(w.unwritten, p...)
		w.unwritten = nil
	}
	for {
		w.armWrite()
		e := w.wepoch
		n, err := w.nc.Write(p)
		s.bytesWritten.Add(uint64(n))
		p = p[n:]
		switch {
		case err == nil:
			return orig, nil
		case !isTimeout(err):
			return 0, err
		case s.q.Load():
			w.deferred = true
			w.unwritten = append(w.unwritten, p...)
			return orig, nil
		case s.epoch.Load() != e:
			continue // cut by a quiesce that has been aborted since
		}
		return 0, err
	}
}

// armWrite keeps the write deadline: WriteTimeout from now (refreshed when
// a quarter of it has passed), or the quiesce cutoff while quiescing.
func (w *connWriter) armWrite() {
	s := w.srv
	if e := s.epoch.Load(); e != w.wepoch {
		// A quiesce began or ended: its cutoff may still be armed.
		w.wepoch, w.wdl = e, time.Time{}
		w.nc.SetWriteDeadline(time.Time{})
	}
	if !s.q.Load() {
		if wt := s.cfg.WriteTimeout; wt > 0 {
			now := time.Now()
			if w.wdl.Sub(now) < wt*3/4 {
				w.wdl = now.Add(wt)
				w.nc.SetWriteDeadline(w.wdl)
			}
		}
		if !s.q.Load() {
			return
		}
	}
	// Quiescing (possibly since the check above, whose deadline the
	// quiescer's own may have preceded).
	if dl := time.Unix(0, s.cutoff.Load()); !w.wdl.Equal(dl) {
		w.wdl = dl
		w.nc.SetWriteDeadline(dl)
	}
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{srv: s, st: s.store, nc: nc}
	c.br = bufio.NewReaderSize((*connReader)(c), max(minReadBuf, s.cfg.MaxLineLen))
	c.bw = bufio.NewWriterSize((*connWriter)(c), writeBuf)
	c.carry = make([]byte, 0, MaxKeyLen+1)
	c.wepoch = ^uint64(0) // arm at the first write: nc may carry an old deadline
	return c
}

// serve runs the connection until the client quits, errs, idles out or the
// server shuts down. A panic (a bug) closes this connection only.
func (c *conn) serve() {
	defer c.srv.trackConn(c, false)
	defer func() {
		if !c.parked {
			c.nc.Close()
		}
	}()
	defer func() {
		if r := recover(); r != nil {
			buf := make([]byte, 4096)
			buf = buf[:runtime.Stack(buf, false)]
			c.srv.cfg.Logf("kv: panic serving %v: %v\n%s", c.nc.RemoteAddr(), r, buf)
		}
	}()
	if c.resumed {
		// Where the connection stopped: replies first, then the rest of
		// a refused data block, then the pending input (connReader).
		if len(c.out) > 0 {
			c.bw.Write(c.out)
			c.out = nil
		}
		if c.discard > 0 {
			n := c.discard
			c.discard = 0
			c.swallow(n)
		}
	}
	c.loop()
}

// loop reads and executes commands. It returns when the connection is done.
func (c *conn) loop() {
	first := !c.resumed
	for !c.quit {
		if c.srv.q.Load() && c.park(nil, 0) {
			return
		}
		if !c.lineBuffered() {
			// About to block: send what is pending first.
			if c.bw.Flush() != nil {
				return
			}
			if c.srv.inShutdown.Load() {
				return
			}
			c.repoch = c.srv.epoch.Load()
			c.setReadDeadline(c.srv.cfg.IdleTimeout)
			if c.br.Buffered() == 0 {
				c.idle.Store(true)
				if c.srv.inShutdown.Load() {
					return
				}
			}
			err := c.fillLine(first)
			c.idle.Store(false)
			if err != nil {
				if c.byQuiesce(err, c.repoch) {
					continue // park, or re-arm after an aborted quiesce
				}
				// EOF, a timeout or a reset; a partial line is dropped.
				c.bw.Flush()
				return
			}
		}
		if first {
			first = false
			// A binary-protocol request (magic byte 0x80) has no line
			// structure: answer once and close rather than misparse it.
			if b, err := c.br.Peek(1); err == nil && b[0] == 0x80 {
				c.reply(lineBinary)
				break
			}
		}
		// A line, or a full buffer, is there: this does not block.
		line, err := c.br.ReadSlice('\n')
		switch err {
		case nil:
		case bufio.ErrBufferFull:
		default:
			c.bw.Flush()
			return
		}
		more := err == bufio.ErrBufferFull
		c.line = line
		if isRetrieval(line) {
			c.retrieval(line, more)
			continue
		}
		if more || len(line) > c.srv.cfg.MaxLineLen {
			c.reply(lineTooLong)
			break
		}
		c.command(trimEOL(line))
	}
	if !c.parked {
		c.bw.Flush()
	}
}

// fillLine reads until a whole line is buffered or the buffer is full (or,
// on a connection's first read, a binary-protocol magic byte arrived). It
// consumes nothing, so a read cut short by a quiesce leaves every byte
// received in the buffer, to be saved with the connection.
func (c *conn) fillLine(first bool) error {
	for !c.lineBuffered() && c.br.Buffered() < c.br.Size() {
		if first && c.br.Buffered() > 0 {
			if b, _ := c.br.Peek(1); b[0] == 0x80 {
				return nil
			}
		}
		if _, err := c.br.Peek(c.br.Buffered() + 1); err != nil {
			return err
		}
	}
	return nil
}

// lineBuffered reports whether a whole line is already buffered, so that
// reading it cannot block.
func (c *conn) lineBuffered() bool {
	n := c.br.Buffered()
	if n == 0 {
		return false
	}
	b, _ := c.br.Peek(n)
	return bytes.IndexByte(b, '\n') >= 0
}

// setReadDeadline arms the read deadline d from now (none if d is 0). While
// the server quiesces, it arms a deadline in the past instead, so that the
// read returns at once and the connection parks; the check comes after
// arming, so either this or the quiescer's own wake-up is the last word.
// Reads a quiesce must not interrupt (c.steady) keep d.
func (c *conn) setReadDeadline(d time.Duration) {
	if d > 0 {
		c.nc.SetReadDeadline(time.Now().Add(d))
	} else {
		c.nc.SetReadDeadline(time.Time{})
	}
	if !c.steady && c.srv.q.Load() {
		c.nc.SetReadDeadline(aLongTimeAgo)
	}
}

// prepareRead readies a read of n bytes from br: if they are not all
// buffered, the read will wait on the network, so pending replies are
// flushed first and the read timeout is armed (c.repoch records the epoch
// for byQuiesce).
func (c *conn) prepareRead(n int) error {
	if c.br.Buffered() >= n {
		return nil
	}
	if err := c.bw.Flush(); err != nil {
		return err
	}
	c.repoch = c.srv.epoch.Load()
	c.setReadDeadline(c.srv.cfg.ReadTimeout)
	return nil
}

func trimEOL(line []byte) []byte {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
		if n > 1 && line[n-2] == '\r' {
			line = line[:n-2]
		}
	}
	return line
}

// tokenize splits line at spaces into toks. It reports the token count and
// whether there were more tokens than fit.
func tokenize(line []byte, toks *[maxTokens][]byte) (n int, over bool) {
	i := 0
	for i < len(line) {
		if line[i] == ' ' {
			i++
			continue
		}
		j := i
		for j < len(line) && line[j] != ' ' {
			j++
		}
		if n == maxTokens {
			return n, true
		}
		toks[n] = line[i:j]
		n++
		i = j
	}
	return n, false
}

// isRetrieval reports whether line starts with get, gets, gat or gats.
func isRetrieval(line []byte) bool {
	i := 0
	for i < len(line) && line[i] == ' ' {
		i++
	}
	j := i
	for j < len(line) && line[j] != ' ' && line[j] != '\r' && line[j] != '\n' {
		j++
	}
	switch string(line[i:j]) {
	case "get", "gets", "gat", "gats":
		return true
	}
	return false
}

func (c *conn) reply(s string) {
	c.bw.WriteString(s)
	c.bw.WriteString("\r\n")
}

func isNoreply(tok []byte) bool { return string(tok) == "noreply" }

// validKey reports whether k is a legal key: 1 to 250 bytes with no
// control characters or spaces.
func validKey(k []byte) bool {
	if len(k) == 0 || len(k) > MaxKeyLen {
		return false
	}
	for _, b := range k {
		if b <= ' ' || b == 0x7f {
			return false
		}
	}
	return true
}

func parseInt64(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	u, ok := parseUint64(b)
	if !ok || u > 1<<63 || (!neg && u == 1<<63) {
		return 0, false
	}
	if neg {
		return -int64(u), true
	}
	return int64(u), true
}

func parseUint32(b []byte) (uint32, bool) {
	u, ok := parseUint64(b)
	if !ok || u > 1<<32-1 {
		return 0, false
	}
	return uint32(u), true
}

// command executes one non-retrieval command line (without its "\r\n").
func (c *conn) command(line []byte) {
	n, over := tokenize(line, &c.toks)
	if n == 0 || over {
		c.reply(lineError)
		return
	}
	t := c.toks[:n]
	switch string(t[0]) {
	case "set":
		c.storage(ModeSet, t)
	case "add":
		c.storage(ModeAdd, t)
	case "replace":
		c.storage(ModeReplace, t)
	case "append":
		c.storage(ModeAppend, t)
	case "prepend":
		c.storage(ModePrepend, t)
	case "cas":
		c.storage(ModeCAS, t)
	case "delete":
		c.delete(t)
	case "incr":
		c.incr(t, false)
	case "decr":
		c.incr(t, true)
	case "touch":
		c.touch(t)
	case "flush_all":
		c.flushAll(t)
	case "stats":
		c.stats(t)
	case "version":
		// As memcached 1.6: arguments are ignored.
		c.bw.WriteString("VERSION ")
		c.reply(c.srv.cfg.Version)
	case "verbosity":
		c.verbosity(t)
	case "quit":
		// As memcached 1.6: arguments are ignored.
		c.quit = true
	default:
		c.reply(lineError)
	}
}

// storage executes set, add, replace, append, prepend and cas:
//
//	<cmd> <key> <flags> <exptime> <bytes> [noreply]
//	cas <key> <flags> <exptime> <bytes> <cas unique> [noreply]
//
// followed by a data block of <bytes> bytes and "\r\n". A wrong token count
// is answered with ERROR and the data block (whose length is unknown) is
// not consumed, as memcached does. Once <bytes> is known the data block is
// always consumed, also after an error, so the stream stays in sync.
func (c *conn) storage(mode Mode, t [][]byte) {
	want := 5
	if mode == ModeCAS {
		want = 6
	}
	if len(t) != want && len(t) != want+1 {
		c.reply(lineError)
		return
	}
	noreply := len(t) == want+1 && isNoreply(t[want])
	size, ok := parseInt64(t[4])
	if !ok || size < 0 || size > maxDataLen {
		c.reply(lineBadFormat)
		return
	}
	key := t[1]
	flags, ok1 := parseUint32(t[2])
	exptime, ok2 := parseInt64(t[3])
	var cas uint64
	ok3 := true
	if mode == ModeCAS {
		cas, ok3 = parseUint64(t[5])
	}
	if !ok1 || !ok2 || !ok3 || !validKey(key) {
		c.reply(lineBadFormat)
		c.swallow(size + 2)
		return
	}
	if size > int64(c.st.MaxItemSize()) {
		c.st.refuseTooLarge(mode, key)
		if !noreply {
			c.reply(lineObjectTooLong)
		}
		c.swallow(size + 2)
		return
	}
	if !c.srv.reserve(size + 2) {
		if !noreply {
			c.reply(NoMemory.String())
		}
		c.swallow(size + 2)
		return
	}
	defer c.srv.release(size + 2)
	// key points into the read buffer, which reading the data block may
	// overwrite: keep a copy.
	key = append(c.key[:0], key...)
	if c.br.Buffered() < int(size)+2 {
		// The block must be awaited, and a quiesce may come meanwhile:
		// keep the raw line too, to hand the whole request over.
		c.saved = append(c.saved[:0], c.line...)
	}
	buf := make([]byte, size+2)
	for got := 0; got < len(buf); {
		if c.prepareRead(len(buf)-got) != nil {
			c.quit = true
			return
		}
		n, err := io.ReadFull(c.br, buf[got:])
		got += n
		if err == nil {
			break
		}
		if !c.byQuiesce(err, c.repoch) {
			c.quit = true
			return
		}
		if c.srv.q.Load() && c.park(append(c.saved, buf[:got]...), 0) {
			return // the request is re-read from the start after resume
		}
	}
	if buf[size] != '\r' || buf[size+1] != '\n' {
		c.reply(lineBadChunk)
		return
	}
	r := c.st.store(mode, key, flags, exptime, buf[:size:size], cas)
	if !noreply {
		c.reply(r.String())
	}
}

// swallow discards n bytes of input (a refused data block).
func (c *conn) swallow(n int64) {
	for n > 0 && !c.quit {
		chunk := int(min(n, int64(c.br.Size())))
		if c.prepareRead(chunk) != nil {
			c.quit = true
			return
		}
		d, err := c.br.Discard(chunk)
		n -= int64(d)
		if err != nil {
			if c.byQuiesce(err, c.repoch) {
				if c.srv.q.Load() {
					c.park(nil, n)
				}
				continue
			}
			c.quit = true
		}
	}
}

// delete <key> [0] [noreply]
func (c *conn) delete(t [][]byte) {
	if len(t) < 2 || len(t) > 4 {
		c.reply(lineError)
		return
	}
	noreply := false
	switch {
	case len(t) == 3 && isNoreply(t[2]):
		noreply = true
	case len(t) == 3 && string(t[2]) == "0":
	case len(t) == 4 && string(t[2]) == "0" && isNoreply(t[3]):
		noreply = true
	case len(t) > 2:
		c.reply(lineBadDelete)
		return
	}
	if len(t[1]) > MaxKeyLen {
		c.reply(lineBadFormat)
		return
	}
	r := c.st.delete(t[1])
	if !noreply {
		c.reply(r.String())
	}
}

// incr|decr <key> <delta> [noreply]
func (c *conn) incr(t [][]byte, decr bool) {
	if len(t) != 3 && len(t) != 4 {
		c.reply(lineError)
		return
	}
	noreply := len(t) == 4 && isNoreply(t[3])
	if len(t[1]) > MaxKeyLen {
		c.reply(lineBadFormat)
		return
	}
	delta, ok := parseUint64(t[2])
	if !ok {
		c.reply(lineBadDelta)
		return
	}
	v, r := c.st.incr(t[1], delta, decr)
	if noreply {
		return
	}
	if r != Stored {
		c.reply(r.String())
		return
	}
	b := appendUint(c.bw.AvailableBuffer(), v)
	c.bw.Write(append(b, '\r', '\n'))
}

// touch <key> <exptime> [noreply]
func (c *conn) touch(t [][]byte) {
	if len(t) != 3 && len(t) != 4 {
		c.reply(lineError)
		return
	}
	noreply := len(t) == 4 && isNoreply(t[3])
	if len(t[1]) > MaxKeyLen {
		c.reply(lineBadFormat)
		return
	}
	exptime, ok := parseInt64(t[2])
	if !ok {
		c.reply(lineBadExptime)
		return
	}
	r := c.st.touch(t[1], exptime)
	if !noreply {
		c.reply(r.String())
	}
}

// flush_all [delay] [noreply]
func (c *conn) flushAll(t [][]byte) {
	if len(t) > 3 {
		c.reply(lineError)
		return
	}
	noreply := len(t) > 1 && isNoreply(t[len(t)-1])
	var delay int64
	if len(t) == 3 || (len(t) == 2 && !noreply) {
		var ok bool
		if delay, ok = parseInt64(t[1]); !ok {
			c.reply(lineBadFormat)
			return
		}
	}
	c.st.FlushAll(delay)
	if !noreply {
		c.reply("OK")
	}
}

// verbosity <level> [noreply]. Logging is the kernel's business; the level
// is only remembered (and shown in stats settings).
func (c *conn) verbosity(t [][]byte) {
	if len(t) != 2 && len(t) != 3 {
		c.reply(lineError)
		return
	}
	noreply := isNoreply(t[len(t)-1])
	if !isNoreply(t[1]) {
		level, ok := parseUint32(t[1])
		if !ok {
			c.reply(lineBadFormat)
			return
		}
		c.srv.verbosity.Store(level)
	}
	if !noreply {
		c.reply("OK")
	}
}

// retrieval executes get, gets, gat and gats:
//
//	get|gets <key>*
//	gat|gats <exptime> <key>*
//
// The keys are streamed: chunk is the first part of the line as read, and
// if more is set the line goes on in br and is read chunk by chunk, so a
// multi-get of any number of keys needs only the read buffer. Each hit is
// written as it is found.
func (c *conn) retrieval(chunk []byte, more bool) {
	var (
		idx     int  // tokens seen so far
		withCAS bool // gets, gats
		touch   bool // gat, gats
		exptime int64
		errLine string
	)
	token := func(tok []byte) {
		defer func() { idx++ }()
		switch {
		case idx == 0:
			withCAS = string(tok) == "gets" || string(tok) == "gats"
			touch = string(tok) == "gat" || string(tok) == "gats"
		case errLine != "":
		case touch && idx == 1:
			var ok bool
			if exptime, ok = parseInt64(tok); !ok {
				errLine = lineBadExptime
			}
		case len(tok) > MaxKeyLen:
			errLine = lineBadFormat
		default:
			c.writeValue(tok, withCAS, touch, exptime)
		}
	}
	carry := c.carry[:0]
	for {
		if !more {
			chunk = chunk[:len(chunk)-1] // the '\n'
			if len(chunk) == 0 && len(carry) > 0 && carry[len(carry)-1] == '\r' {
				carry = carry[:len(carry)-1]
			} else if len(chunk) > 0 && chunk[len(chunk)-1] == '\r' {
				chunk = chunk[:len(chunk)-1]
			}
		}
		i := 0
		for i < len(chunk) {
			if chunk[i] == ' ' {
				if len(carry) > 0 {
					token(carry)
					carry = carry[:0]
				}
				i++
				continue
			}
			j := i
			for j < len(chunk) && chunk[j] != ' ' {
				j++
			}
			if j == len(chunk) && more {
				// The token may go on in the next chunk. Keep at most
				// one byte more than a key may have: enough to know
				// it is too long.
				room := cap(carry) - len(carry)
				carry = append(carry, chunk[i:i+min(j-i, room)]...)
				break
			}
			if len(carry) > 0 {
				room := cap(carry) - len(carry)
				carry = append(carry, chunk[i:i+min(j-i, room)]...)
				token(carry)
				carry = carry[:0]
			} else {
				token(chunk[i:j])
			}
			i = j
		}
		if !more {
			if len(carry) > 0 {
				token(carry)
			}
			break
		}
		// Not a safe point: part of the reply may be out. A quiesce
		// waits for the line's end (c.steady keeps the read deadline).
		c.steady = true
		err := c.prepareRead(1)
		c.steady = false
		if err != nil {
			c.quit = true
			return
		}
		chunk, err = c.br.ReadSlice('\n')
		switch {
		case err == nil:
			more = false
		case err == bufio.ErrBufferFull:
		case c.byQuiesce(err, c.repoch):
			// The quiescer's wake-up: what arrived is a chunk like any
			// other; wait on for the rest.
		default:
			c.quit = true
			return
		}
	}
	minTokens := 2
	if touch {
		minTokens = 3
	}
	switch {
	case errLine != "":
		c.reply(errLine)
	case idx < minTokens:
		c.reply(lineError)
	default:
		c.reply("END")
	}
}

// writeValue looks key up and, on a hit, writes its VALUE line and data.
func (c *conn) writeValue(key []byte, withCAS, touch bool, exptime int64) {
	v, ok := c.st.get(key, touch, exptime)
	if !ok {
		return
	}
	if c.bw.Available() < MaxKeyLen+64 {
		c.bw.Flush()
	}
	b := c.bw.AvailableBuffer()
	b = append(b, "VALUE "...)
	b = append(b, key...)
	b = append(b, ' ')
	b = appendUint(b, uint64(v.flags))
	b = append(b, ' ')
	b = appendUint(b, uint64(len(v.value)))
	if withCAS {
		b = append(b, ' ')
		b = appendUint(b, v.cas)
	}
	b = append(b, '\r', '\n')
	c.bw.Write(b)
	c.bw.Write(v.value)
	c.bw.WriteString("\r\n")
}
