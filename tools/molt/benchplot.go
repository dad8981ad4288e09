package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// writeBenchSVG draws the boot samples as a strip chart: one row per time
// measurement, one dot per boot, on a shared millisecond axis. It is plain
// SVG so the docs need no plotting dependency to show it.
func writeBenchSVG(path string, r benchResult) error {
	var rows []int // indexes into benchRows
	for i, row := range benchRows {
		if row.unit == "ms" {
			rows = append(rows, i)
		}
	}
	max := 0.0
	for _, i := range rows {
		row := benchRows[i]
		for _, s := range r.Samples {
			if v := row.f(s); v > max {
				max = v
			}
		}
	}
	step := niceStep(max / 5)
	axisMax := step * float64(int(max/step)+1)
	const left, width, rowH, top = 170.0, 480.0, 40.0, 40.0
	height := top + rowH*float64(len(rows)) + 40
	x := func(v float64) float64 { return left + v/axisMax*width }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", left+width+30, height)
	fmt.Fprintf(&b, `<text x="10" y="20" font-size="14">molt boot time, %d boots under %s (%s)</text>`+"\n", len(r.Samples), strings.ToUpper(r.Accel), r.Date[:10])
	for i, ri := range rows {
		row := benchRows[ri]
		y := top + rowH*float64(i) + rowH/2
		fmt.Fprintf(&b, `<text x="10" y="%.0f">%s</text>`+"\n", y+4, strings.TrimSpace(row.name))
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#ddd"/>`+"\n", left, y, left+width, y)
		for _, s := range r.Samples {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.0f" r="4" fill="#1f77b4" fill-opacity="0.6"/>`+"\n", x(row.f(s)), y)
		}
	}
	axisY := top + rowH*float64(len(rows)) + 5
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#000"/>`+"\n", left, axisY, left+width, axisY)
	for v := 0.0; v <= axisMax+step/2; v += step {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#000"/>`+"\n", x(v), axisY, x(v), axisY+5)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%g ms</text>`+"\n", x(v), axisY+18, v)
	}
	b.WriteString("</svg>\n")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// niceStep rounds a raw axis step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := 1.0
	for p*10 <= raw {
		p *= 10
	}
	for p > raw {
		p /= 10
	}
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// writeBenchSVGs draws the charts of the suites that ran into dir:
// boot.svg (boot samples), kv.svg (memcslap rounds) and update.svg (update
// and reboot gaps).
func writeBenchSVGs(dir string, r benchResult) error {
	if len(r.Samples) > 0 {
		if err := writeBenchSVG(filepath.Join(dir, "boot.svg"), r); err != nil {
			return err
		}
	}
	if len(r.KV) > 0 {
		if err := writeKVSVG(filepath.Join(dir, "kv.svg"), r); err != nil {
			return err
		}
	}
	return writeUpdateSVG(filepath.Join(dir, "update.svg"), r)
}

// writeKVSVG draws the kv rounds as a strip chart: one row per target and
// memcslap test, one dot per round, a bar at the median, on a shared ops/s
// axis.
func writeKVSVG(path string, r benchResult) error {
	max := 0.0
	for _, k := range r.KV {
		for _, s := range k.Samples {
			max = math.Max(max, s.OpsPerSec)
		}
	}
	step := niceStep(max / 5)
	axisMax := step * float64(int(max/step)+1)
	const left, width, rowH, top = 230.0, 440.0, 36.0, 40.0
	height := top + rowH*float64(len(r.KV)) + 40
	x := func(v float64) float64 { return left + v/axisMax*width }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", left+width+40, height)
	fmt.Fprintf(&b, `<text x="10" y="20" font-size="14">kv throughput (memcslap, ops/s), molt vs Linux+memcached, %s (%s)</text>`+"\n", strings.ToUpper(r.Accel), r.Date[:10])
	for i, k := range r.KV {
		y := top + rowH*float64(i) + rowH/2
		test := ""
		if len(k.Samples) > 0 {
			test = k.Samples[0].Test
		}
		fmt.Fprintf(&b, `<text x="10" y="%.0f">%s %s</text>`+"\n", y+4, k.Name, test)
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#ddd"/>`+"\n", left, y, left+width, y)
		fill := "#1f77b4"
		if !strings.HasPrefix(k.Name, "molt") {
			fill = "#ff7f0e"
		}
		for _, s := range k.Samples {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.0f" r="4" fill="%s" fill-opacity="0.6"/>`+"\n", x(s.OpsPerSec), y, fill)
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#000" stroke-width="2"/>`+"\n", x(k.OpsPerSec), y-9, x(k.OpsPerSec), y+9)
	}
	axisY := top + rowH*float64(len(r.KV)) + 5
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#000"/>`+"\n", left, axisY, left+width, axisY)
	for v := 0.0; v <= axisMax+step/2; v += step {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#000"/>`+"\n", x(v), axisY, x(v), axisY+5)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%g</text>`+"\n", x(v), axisY+18, v)
	}
	b.WriteString("</svg>\n")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
