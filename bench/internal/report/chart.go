package report

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// ours holds the fixed colours of the floor and of our servers: greys for
// the floor, reds for ours on net/http, purples for ours on the event-loop
// backend, so each family reads as one in the chart.
var ours = map[string]color.RGBA{
	"floor":              {0x55, 0x55, 0x55, 0xff},
	"ours":               {0xd6, 0x27, 0x28, 0xff},
	"ours-event":         {0xff, 0x98, 0x96, 0xff},
	"ours-loop":          {0x6a, 0x1b, 0x9a, 0xff},
	"ours-loop-worker":   {0xb3, 0x7f, 0xd9, 0xff},
	"ours-loop-blocking": {0xe0, 0xc8, 0xf0, 0xff},
}

// palette colours the peers, in the order they are listed.
var palette = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff},
	{0x2c, 0xa0, 0x2c, 0xff},
	{0xff, 0x7f, 0x0e, 0xff},
	{0x8c, 0x56, 0x4b, 0xff},
	{0x17, 0xbe, 0xcf, 0xff},
	{0xbc, 0xbd, 0x22, 0xff},
	{0x7f, 0x7f, 0x7f, 0xff},
	{0xe3, 0x77, 0xc2, 0xff},
}

// colorFor keeps each server's colour stable across panels.
func colorFor(r *Results, server string) color.RGBA {
	if c, ok := ours[server]; ok {
		return c
	}
	i := 0
	for _, s := range r.Servers {
		if s == server {
			return palette[i%len(palette)]
		}
		if _, ok := ours[s]; !ok {
			i++
		}
	}
	return palette[0]
}

type canvas struct {
	img  *image.RGBA
	face font.Face
}

func (c *canvas) rect(x0, y0, x1, y1 int, col color.Color) {
	draw.Draw(c.img, image.Rect(x0, y0, x1, y1), image.NewUniform(col), image.Point{}, draw.Src)
}

func (c *canvas) text(x, y int, s string, col color.Color) {
	d := font.Drawer{Dst: c.img, Src: image.NewUniform(col), Face: c.face, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func (c *canvas) width(s string) int { return font.MeasureString(c.face, s).Ceil() }

// panel is one grouped bar chart: groups along x, one bar per series.
type panel struct {
	title  string
	groups []string
	series []string
	values [][]float64 // [group][series], 0 means no value
	ref    float64     // a dashed reference line (the floor at 1.0), 0 for none
	label  func(float64) string
	colors []color.RGBA
	// log draws the y axis logarithmically, for ratios that span orders
	// of magnitude (pipelined rows against one-in-flight rows).
	log bool
	// groupColors colours each group's single bar and prints its value,
	// for panels with one series.
	groupColors []color.RGBA
}

func niceStep(max float64) float64 {
	if max <= 0 {
		return 1
	}
	raw := max / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if raw <= m*mag {
			return m * mag
		}
	}
	return 10 * mag
}

func (c *canvas) panel(p panel, r image.Rectangle) {
	black := color.RGBA{0x20, 0x20, 0x20, 0xff}
	grid := color.RGBA{0xe0, 0xe0, 0xe0, 0xff}
	c.text(r.Min.X+8, r.Min.Y+14, p.title, black)
	plot := image.Rect(r.Min.X+60, r.Min.Y+26, r.Max.X-10, r.Max.Y-22)
	vmax := p.ref
	for _, g := range p.values {
		for _, v := range g {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				vmax = max(vmax, v)
			}
		}
	}
	if vmax == 0 {
		c.text(plot.Min.X, plot.Min.Y+20, "no data", black)
		return
	}
	var y func(float64) int
	if p.log {
		vmin := 1.0
		for _, g := range p.values {
			for _, v := range g {
				if v > 0 {
					vmin = min(vmin, v)
				}
			}
		}
		lo, hi := vmin*0.7, vmax*1.3
		span := math.Log(hi / lo)
		y = func(v float64) int {
			v = max(v, lo)
			return plot.Max.Y - int(float64(plot.Dy())*math.Log(v/lo)/span)
		}
		for dec := math.Pow(10, math.Floor(math.Log10(lo))); dec < hi; dec *= 10 {
			for _, m := range []float64{1, 2, 5} {
				t := dec * m
				if t < lo || t > hi {
					continue
				}
				yy := y(t)
				c.rect(plot.Min.X, yy, plot.Max.X, yy+1, grid)
				lab := p.label(t)
				c.text(plot.Min.X-6-c.width(lab), yy+4, lab, black)
			}
		}
	} else {
		step := niceStep(vmax * 1.08)
		top := math.Ceil(vmax*1.08/step) * step
		y = func(v float64) int { return plot.Max.Y - int(float64(plot.Dy())*v/top) }
		for t := 0.0; t <= top+step/2; t += step {
			yy := y(t)
			c.rect(plot.Min.X, yy, plot.Max.X, yy+1, grid)
			lab := p.label(t)
			c.text(plot.Min.X-6-c.width(lab), yy+4, lab, black)
		}
	}
	c.rect(plot.Min.X, plot.Min.Y, plot.Min.X+1, plot.Max.Y, black)
	c.rect(plot.Min.X, plot.Max.Y, plot.Max.X, plot.Max.Y+1, black)
	gw := float64(plot.Dx()) / float64(len(p.groups))
	bw := gw * 0.84 / float64(len(p.series))
	for gi, g := range p.groups {
		gx := float64(plot.Min.X) + gw*float64(gi) + gw*0.08
		for si := range p.series {
			v := p.values[gi][si]
			if v <= 0 || math.IsNaN(v) {
				continue
			}
			x0 := int(gx + bw*float64(si))
			x1 := int(gx + bw*float64(si+1))
			if x1-x0 > 2 {
				x1--
			}
			col := color.RGBA{}
			if p.groupColors != nil {
				col = p.groupColors[gi]
			} else {
				col = p.colors[si]
			}
			c.rect(x0, y(v), x1, plot.Max.Y, col)
			if p.groupColors != nil {
				lab := p.label(v)
				c.text((x0+x1)/2-c.width(lab)/2, y(v)-3, lab, black)
			}
		}
		lw := c.width(g)
		c.text(int(float64(plot.Min.X)+gw*(float64(gi)+0.5))-lw/2, plot.Max.Y+15, g, black)
	}
	if p.ref > 0 {
		yy := y(p.ref)
		for x := plot.Min.X; x < plot.Max.X; x += 8 {
			c.rect(x, yy, min(x+4, plot.Max.X), yy+1, black)
		}
	}
}

// Chart draws the report's figure: echo throughput and CPU relative to the
// floor for every row, idle memory and broadcast time.
func Chart(r *Results) *image.RGBA {
	const w, h = 1400, 1060
	c := &canvas{img: image.NewRGBA(image.Rect(0, 0, w, h)), face: basicfont.Face7x13}
	c.rect(0, 0, w, h, color.White)
	black := color.RGBA{0x20, 0x20, 0x20, 0xff}
	c.text(16, 20, fmt.Sprintf("WebSocket echo servers, %s, %s, %s (one core each for server and load)",
		r.Machine.CPU, r.Machine.GoVersion, r.Machine.Date.Format("2006-01-02")), black)
	// Legend.
	x := 16
	for _, s := range r.Servers {
		col := colorFor(r, s)
		c.rect(x, 30, x+12, 42, col)
		c.text(x+16, 41, s, black)
		x += 28 + c.width(s)
	}
	var groups []string
	for _, row := range r.Rows {
		groups = append(groups, row.ID)
	}
	colors := make([]color.RGBA, len(r.Servers))
	for i, s := range r.Servers {
		colors[i] = colorFor(r, s)
	}
	relative := func(f func(EchoStats) float64) [][]float64 {
		vals := make([][]float64, len(r.Rows))
		for gi, row := range r.Rows {
			vals[gi] = make([]float64, len(r.Servers))
			fl, _ := r.EchoStatsFor(row.ID, "floor")
			base := f(fl)
			for si, s := range r.Servers {
				st, ok := r.EchoStatsFor(row.ID, s)
				if ok && base > 0 {
					vals[gi][si] = f(st) / base
				}
			}
		}
		return vals
	}
	ratioLabel := func(v float64) string {
		if v < 1 {
			return fmt.Sprintf("%.2gx", v)
		}
		return fmt.Sprintf("%.0fx", v)
	}
	if len(r.Rows) > 0 {
		c.panel(panel{
			title:  "Echo round trips per second, relative to the floor, log scale (higher is better; dashed line = floor)",
			groups: groups, series: r.Servers, colors: colors, ref: 1, label: ratioLabel, log: true,
			values: relative(func(s EchoStats) float64 { return s.PerSec.Med }),
		}, image.Rect(0, 50, w, 350))
		c.panel(panel{
			title:  "Server CPU time per round trip, relative to the floor, log scale (lower is better)",
			groups: groups, series: r.Servers, colors: colors, ref: 1, label: ratioLabel, log: true,
			values: relative(func(s EchoStats) float64 { return s.CPUPerRT.Med }),
		}, image.Rect(0, 355, w, 655))
		c.panel(panel{
			title:  "p99 latency, relative to the floor, log scale (lower is better)",
			groups: groups, series: r.Servers, colors: colors, ref: 1, label: ratioLabel, log: true,
			values: relative(func(s EchoStats) float64 { return s.P99.Med }),
		}, image.Rect(0, 660, w, 850))
	}
	// Single-group panels for memory and broadcast, one bar per server.
	single := func(title string, f func(string) float64, label func(float64) string, rect image.Rectangle) {
		var names []string
		var vals []float64
		var cols []color.RGBA
		for _, s := range r.Servers {
			if v := f(s); v > 0 {
				names = append(names, s)
				vals = append(vals, v)
				cols = append(cols, colorFor(r, s))
			}
		}
		values := make([][]float64, len(names))
		for i := range names {
			values[i] = []float64{vals[i]}
		}
		if len(names) == 0 {
			c.text(rect.Min.X+8, rect.Min.Y+14, title+": not measured", black)
			return
		}
		c.panel(panel{title: title, groups: names, series: []string{"value"}, values: values, groupColors: cols, label: label}, rect)
	}
	memN, bcN := 0, 0
	if len(r.Mem) > 0 {
		memN = r.Mem[0].Conns
	}
	if len(r.Broadcast) > 0 {
		bcN = r.Broadcast[0].Conns
	}
	single(fmt.Sprintf("Server memory per idle connection, bytes (%s connections; lower is better)", group(int64(memN))),
		func(s string) float64 { st, _, _ := r.MemStatsFor(s); return st.Med },
		func(v float64) string { return group(int64(v)) }, image.Rect(0, 855, w/2, h))
	single(fmt.Sprintf("Broadcast 128 B to %s connections: ms to the last one (lower is better)", group(int64(bcN))),
		func(s string) float64 { st, _, _, _ := r.BroadcastStatsFor(s); return st.Med / 1e6 },
		func(v float64) string { return fmt.Sprintf("%.0f", v) }, image.Rect(w/2, 855, w, h))
	return c.img
}

// WritePNG encodes the chart.
func WritePNG(w io.Writer, r *Results) error {
	return png.Encode(w, Chart(r))
}
