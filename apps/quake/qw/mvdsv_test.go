package qw_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/molt-os/molt/apps/quake/bsp"
	"github.com/molt-os/molt/apps/quake/qw"
	"github.com/molt-os/molt/internal/syncbuf"
	"github.com/molt-os/molt/internal/testtool"
)

// TestSignonAgainstMVDSV plays a client's whole signon with this package
// against Debian's QuakeWorld server (mvdsv with the KTX game), on the map
// apps/quake/bsp generates: getchallenge, connect, new, the sound and
// model lists, prespawn with the map's checksum2 (mvdsv drops a client
// whose checksum does not match its own), spawn, begin, then frames. Every
// payload mvdsv sends must parse, and the client must be in the game: a
// real peer checks the wire format, the netchan and the map at once.
func TestSignonAgainstMVDSV(t *testing.T) {
	mvdsv := testtool.Find(t, "mvdsv", "mvdsv", "/usr/games/mvdsv")
	progs := testtool.FindFile(t, "ktx", "/usr/lib/quakeworld/ktx/qwprogs.so")
	m, err := bsp.Generate(bsp.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	game := filepath.Join(dir, "ktx")
	so, err := os.ReadFile(progs)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"qwprogs.so":     so,
		"maps/molt.bsp":  m.Data,
		"maps/start.bsp": m.Data,
		"ktx.cfg":        []byte("set k_defmap molt\n"),
	} {
		p := filepath.Join(game, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	port := freeUDPPort(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var log syncbuf.Buffer
	srv := exec.CommandContext(ctx, mvdsv, "-basedir", dir, "-game", "ktx", "-progtype", "1", "-port", strconv.Itoa(port), "+map", "molt")
	srv.Dir, srv.Stdout, srv.Stderr, srv.WaitDelay = dir, &log, &log, time.Second
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		srv.Wait()
		if t.Failed() {
			t.Logf("mvdsv output:\n%s", log.String())
		}
	}()

	c, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 8192)
	// ask sends a connectionless request until a reply comes (mvdsv
	// needs a moment to load the map and the game).
	ask := func(req qw.Request) qw.Reply {
		t.Helper()
		pkt, err := req.Encode(nil)
		if err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
			c.Write(pkt)
			c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			n, err := c.Read(buf)
			if err != nil {
				continue
			}
			r, err := qw.ParseReply(buf[:n])
			if err != nil {
				t.Fatalf("reply to %T: %v", req, err)
			}
			return r
		}
		t.Fatalf("no reply to %T within 30 s", req)
		return nil
	}
	ch, ok := ask(qw.ChallengeRequest{}).(qw.ChallengeReply)
	if !ok {
		t.Fatal("getchallenge: not a challenge reply")
	}
	const qport = 4321
	if _, ok := ask(qw.ConnectRequest{Protocol: 28, QPort: qport, Challenge: ch.Challenge, Userinfo: `\name\molt-probe\rate\25000\msg\1`}).(qw.AcceptReply); !ok {
		t.Fatal("connect: not accepted")
	}

	nc := qw.NewChannel(qw.ClientSide, qport)
	send := func(cmds ...string) {
		t.Helper()
		if len(cmds) > 0 {
			var msgs []qw.ClientMessage
			for _, s := range cmds {
				msgs = append(msgs, &qw.StringCmd{Text: s})
			}
			b, err := qw.AppendClientMessages(nil, msgs...)
			if err != nil {
				t.Fatal(err)
			}
			if err := nc.QueueReliable(b); err != nil {
				t.Fatal(err)
			}
		}
		pkt, _, err := nc.Transmit(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(pkt)
	}
	send("new")
	var servercount int32
	var models []string
	began, frames := false, 0
	for deadline := time.Now().Add(time.Minute); frames < 20; {
		if time.Now().After(deadline) {
			t.Fatalf("not in the game after a minute: begin sent %v, %d frames, models %q", began, frames, models)
		}
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, err := c.Read(buf)
		if err != nil {
			send() // a client sends every frame; this also carries the acks
			continue
		}
		payload, err := nc.Process(bytes.Clone(buf[:n]))
		if err != nil {
			t.Logf("packet dropped: %v", err)
			continue
		}
		msgs, err := qw.ParseServerMessages(payload)
		if err != nil {
			t.Fatalf("mvdsv's payload does not parse: %v", err)
		}
		var reply []string
		for _, msg := range msgs {
			switch msg := msg.(type) {
			case *qw.ServerData:
				servercount = msg.ServerCount
				if msg.GameDir != "ktx" || msg.MoveVars.Gravity != 800 {
					t.Errorf("serverdata: %+v", msg)
				}
				reply = append(reply, fmt.Sprintf("soundlist %d 0", servercount))
			case *qw.SoundList:
				reply = append(reply, fmt.Sprintf("soundlist %d %d", servercount, msg.Next))
				if msg.Next == 0 {
					reply[len(reply)-1] = fmt.Sprintf("modellist %d 0", servercount)
				}
			case *qw.ModelList:
				models = append(models, msg.Names...)
				reply = append(reply, fmt.Sprintf("modellist %d %d", servercount, msg.Next))
				if msg.Next == 0 {
					reply[len(reply)-1] = fmt.Sprintf("prespawn %d 0 %d", servercount, int32(m.Checksums.Checksum2))
				}
			case *qw.StuffText:
				for _, line := range strings.Split(msg.Text, "\n") {
					switch {
					case strings.HasPrefix(line, "cmd "):
						// What the server asks the client to send
						// back: pext (mvdsv waits for it before the
						// serverdata), prespawn and spawn steps.
						reply = append(reply, strings.TrimPrefix(line, "cmd "))
					case line == "skins":
						reply = append(reply, fmt.Sprintf("begin %d", servercount))
						began = true
					}
				}
			case *qw.Disconnect:
				t.Fatal("mvdsv disconnected the client")
			case *qw.PacketEntities, *qw.PlayerInfo:
				if began {
					frames++
				}
			}
		}
		send(reply...)
	}
	if len(models) == 0 || models[0] != "maps/molt.bsp" {
		t.Errorf("model list %q; want maps/molt.bsp first", models)
	}
	if !strings.Contains(log.String(), "molt-probe entered the game") {
		t.Errorf("mvdsv did not log the client entering the game")
	}
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}
