// Why this file is C: libjpeg reports a fatal error by calling error_exit, whose default prints and
// calls exit(). The only way to get control back is an error_exit that longjmps to a setjmp in the
// caller's frame, and Swift can neither call setjmp nor be jumped over safely. So the whole decode
// lives here, in one function that owns the setjmp, and reports failure as a return code + message.
// Nothing else belongs in this file: everything that can be Swift is Swift (Sources/ImageCodecs).
#include "cjpegshim.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <jpeglib.h>

struct sq_error_manager {
    struct jpeg_error_mgr base;  // must be first: libjpeg hands us a pointer to it
    jmp_buf escape;
    char message[JMSG_LENGTH_MAX];
};

static void sq_error_exit(j_common_ptr cinfo) {
    struct sq_error_manager *manager = (struct sq_error_manager *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, manager->message);
    longjmp(manager->escape, 1);
}

// libjpeg only *warns* about corrupt or truncated data (e.g. "Premature end of JPEG file") and then
// fills the rest of the image with gray. A silently wrong frame is worse than an error, so every
// warning (msg_level -1) is fatal here; trace messages (level >= 0) are ignored.
static void sq_emit_message(j_common_ptr cinfo, int msg_level) {
    if (msg_level < 0) sq_error_exit(cinfo);
}

static void sq_set_error(char *error, size_t capacity, const char *text) {
    if (capacity == 0) return;
    snprintf(error, capacity, "%s", text);
}

int sq_jpeg_decode_gray(const unsigned char *data, size_t size,
                        long max_side, long max_pixels,
                        unsigned char **pixels, int *width, int *height,
                        char *error, size_t error_capacity) {
    struct jpeg_decompress_struct cinfo;
    struct sq_error_manager manager;
    // volatile: modified between setjmp and longjmp, read after the jump.
    unsigned char *volatile buffer = NULL;

    *pixels = NULL;
    *width = 0;
    *height = 0;
    if (size == 0) {
        sq_set_error(error, error_capacity, "empty JPEG data");
        return 1;
    }
    memset(&manager, 0, sizeof manager);
    cinfo.err = jpeg_std_error(&manager.base);
    manager.base.error_exit = sq_error_exit;
    manager.base.emit_message = sq_emit_message;
    if (setjmp(manager.escape)) {
        sq_set_error(error, error_capacity, manager.message);
        jpeg_destroy_decompress(&cinfo);
        free(buffer);
        return 1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    if ((long)cinfo.image_width > max_side || (long)cinfo.image_height > max_side ||
        (long)cinfo.image_width * (long)cinfo.image_height > max_pixels) {
        snprintf(error, error_capacity, "image is %ux%u, larger than the limit (%ld per side, %ld pixels)",
                 cinfo.image_width, cinfo.image_height, max_side, max_pixels);
        jpeg_destroy_decompress(&cinfo);
        return 1;
    }
    // CMYK and YCCK files (Adobe's, from print workflows) cannot be converted to gray by libjpeg: decode
    // them as CMYK and compute the gray value here. Others: libjpeg's Y channel.
    const int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_GRAYSCALE;
    jpeg_start_decompress(&cinfo);
    if (cinfo.output_components != (cmyk ? 4 : 1)) {
        sq_set_error(error, error_capacity, "libjpeg did not produce the expected channels");
        jpeg_destroy_decompress(&cinfo);
        return 1;
    }
    size_t row_bytes = (size_t)cinfo.output_width;
    buffer = malloc(row_bytes * (size_t)cinfo.output_height);
    unsigned char *volatile cmyk_row = cmyk ? malloc(4 * row_bytes) : NULL;
    if (buffer == NULL || (cmyk && cmyk_row == NULL)) {
        sq_set_error(error, error_capacity, "out of memory");
        free(cmyk_row);
        jpeg_destroy_decompress(&cinfo);
        return 1;
    }
    // Adobe's files (the APP14 marker) store CMYK inverted: 255 = no ink.
    const int inverted = cinfo.saw_Adobe_marker;
    while (cinfo.output_scanline < cinfo.output_height) {
        unsigned char *gray = buffer + (size_t)cinfo.output_scanline * row_bytes;
        if (!cmyk) {
            JSAMPROW row = gray;
            jpeg_read_scanlines(&cinfo, &row, 1);
            continue;
        }
        JSAMPROW row = cmyk_row;
        jpeg_read_scanlines(&cinfo, &row, 1);
        for (size_t x = 0; x < row_bytes; x++) {
            // Ink amounts -> light: channel = (255 - ink) (255 - black) / 255; then BT.601 luma, as for RGB files.
            int light[4];
            for (int i = 0; i < 4; i++) light[i] = inverted ? cmyk_row[4 * x + i] : 255 - cmyk_row[4 * x + i];
            const int r = light[0] * light[3], g = light[1] * light[3], b = light[2] * light[3];  // x 255
            gray[x] = (unsigned char)((299 * r + 587 * g + 114 * b + 127500) / 255000);
        }
    }
    free(cmyk_row);
    jpeg_finish_decompress(&cinfo);
    *width = (int)cinfo.output_width;
    *height = (int)cinfo.output_height;
    *pixels = buffer;
    jpeg_destroy_decompress(&cinfo);
    return 0;
}

void sq_jpeg_free(unsigned char *pixels) { free(pixels); }
