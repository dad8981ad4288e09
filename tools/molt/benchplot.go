package main

import (
	"fmt"
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
