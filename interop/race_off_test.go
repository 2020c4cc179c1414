//go:build !race

package interop

const raceState = "off"
