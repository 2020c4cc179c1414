package websocket

func (c *Conn) negotiateServerExtensions(offers []string, opts *CompressionOptions) (string, error) {
	return "", nil
}

func clientExtensionOffer(opts *CompressionOptions) string { return "" }

func (c *Conn) acceptClientExtensions(values []string, opts *CompressionOptions) error {
	if len(values) > 0 {
		return errorString("server accepted an extension that was not offered: " + values[0])
	}
	return nil
}

type errorString string

func (e errorString) Error() string { return string(e) }
