package kv

import (
	"runtime"
	"time"
)

// stats [settings|reset]
func (c *conn) stats(t [][]byte) {
	switch {
	case len(t) == 1:
		c.generalStats()
	case len(t) == 2 && string(t[1]) == "settings":
		c.settingsStats()
	case len(t) == 2 && string(t[1]) == "reset":
		c.st.ResetStats()
		c.srv.totalConns.Store(uint64(c.srv.currConns.Load()))
		c.srv.rejectedConns.Store(0)
		c.srv.bytesRead.Store(0)
		c.srv.bytesWritten.Store(0)
		c.reply("RESET")
	default:
		// Unknown group, or "stats noreply" (stats has no noreply).
		c.reply(lineError)
	}
}

func (c *conn) stat(name string, v uint64) {
	if c.bw.Available() < 64+len(name) {
		c.bw.Flush()
	}
	b := c.bw.AvailableBuffer()
	b = append(b, "STAT "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = appendUint(b, v)
	c.bw.Write(append(b, '\r', '\n'))
}

func (c *conn) statString(name, v string) {
	c.bw.WriteString("STAT ")
	c.bw.WriteString(name)
	c.bw.WriteString(" ")
	c.reply(v)
}

func (c *conn) generalStats() {
	srv := c.srv
	st := c.st.Stats()
	now := time.Now()
	c.stat("pid", uint64(srv.pid))
	c.stat("uptime", uint64(max(now.Sub(srv.startTime()), 0)/time.Second))
	c.stat("time", uint64(now.Unix()))
	c.statString("version", srv.cfg.Version)
	c.stat("pointer_size", 64)
	c.stat("max_connections", uint64(srv.cfg.MaxConns))
	c.stat("curr_connections", uint64(srv.currConns.Load()))
	c.stat("total_connections", srv.totalConns.Load())
	c.stat("rejected_connections", srv.rejectedConns.Load())
	c.stat("cmd_get", st.CmdGet)
	c.stat("cmd_set", st.CmdSet)
	c.stat("cmd_flush", st.CmdFlush)
	c.stat("cmd_touch", st.CmdTouch)
	c.stat("get_hits", st.GetHits)
	c.stat("get_misses", st.GetMisses)
	c.stat("get_expired", st.GetExpired)
	c.stat("delete_misses", st.DeleteMiss)
	c.stat("delete_hits", st.DeleteHits)
	c.stat("incr_misses", st.IncrMisses)
	c.stat("incr_hits", st.IncrHits)
	c.stat("decr_misses", st.DecrMisses)
	c.stat("decr_hits", st.DecrHits)
	c.stat("cas_misses", st.CasMisses)
	c.stat("cas_hits", st.CasHits)
	c.stat("cas_badval", st.CasBadval)
	c.stat("touch_hits", st.TouchHits)
	c.stat("touch_misses", st.TouchMisses)
	c.stat("bytes_read", srv.bytesRead.Load())
	c.stat("bytes_written", srv.bytesWritten.Load())
	c.stat("limit_maxbytes", uint64(st.LimitBytes))
	c.stat("threads", uint64(runtime.GOMAXPROCS(0)))
	c.stat("bytes", uint64(st.Bytes))
	c.stat("curr_items", st.CurrItems)
	c.stat("total_items", st.TotalItems)
	c.stat("evictions", st.Evictions)
	c.stat("reclaimed", st.Reclaimed)
	c.reply("END")
}

func (c *conn) settingsStats() {
	cfg := &c.srv.cfg
	c.stat("maxbytes", uint64(c.st.maxBytes))
	c.stat("maxconns", uint64(cfg.MaxConns))
	c.stat("verbosity", uint64(c.srv.verbosity.Load()))
	c.statString("evictions", "on") // LRU eviction is always enabled
	c.stat("item_size_max", uint64(c.st.maxItemSize))
	c.stat("max_line_len", uint64(cfg.MaxLineLen))
	c.stat("idle_timeout", uint64(cfg.IdleTimeout/time.Second))
	c.stat("read_timeout", uint64(cfg.ReadTimeout/time.Second))
	c.stat("write_timeout", uint64(cfg.WriteTimeout/time.Second))
	c.statString("binding_protocol", "ascii")
	c.reply("END")
}
