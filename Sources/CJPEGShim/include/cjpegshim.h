#ifndef SONOQUANT_CJPEGSHIM_H
#define SONOQUANT_CJPEGSHIM_H
#include <stddef.h>

/// Decodes a JPEG held in memory to 8-bit gray (libjpeg's JCS_GRAYSCALE output: the Y channel,
/// i.e. 0.299 R + 0.587 G + 0.114 B for a colour JFIF file; for a CMYK or YCCK file, the same luma of
/// R, G, B = (255 - ink)(255 - black) / 255, Adobe's inverted storage undone).
///
/// Returns 0 and sets *pixels (free it with sq_jpeg_free), *width and *height on success.
/// Returns non-zero on any failure (corrupt or truncated data, any libjpeg warning, a side longer
/// than max_side or more than max_pixels pixels) and writes a message into error[error_capacity].
int sq_jpeg_decode_gray(const unsigned char *data, size_t size,
                        long max_side, long max_pixels,
                        unsigned char **pixels, int *width, int *height,
                        char *error, size_t error_capacity);

void sq_jpeg_free(unsigned char *pixels);

#endif
