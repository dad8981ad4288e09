package bsp

// Checker texture colours, as indices into Quake's 256-colour palette.
// Rows 0..15 of the palette are a grey ramp from black to white; indices
// 224..255 are fullbright (drawn ignoring the lightmap), so both colours stay
// well below them. Clients may run with a synthetic palette (molt ships no id
// data), where any two distinct low indices still make a visible checker.
const (
	checkerLight = 11
	checkerDark  = 6
)

// checkerTexture returns a size x size miptex of squares of cell texels
// alternating between two greys, with its three mip levels reduced by the
// same rule (so the squares keep their place at every level).
func checkerTexture(name string, size, cell int) *MipTex {
	t := &MipTex{Name: name, Width: size, Height: size}
	for l := range MipLevels {
		n, c := size>>l, max(cell>>l, 1)
		px := make([]byte, n*n)
		for y := range n {
			for x := range n {
				px[y*n+x] = checkerDark
				if (x/c+y/c)%2 == 0 {
					px[y*n+x] = checkerLight
				}
			}
		}
		t.Pixels[l] = px
	}
	return t
}
