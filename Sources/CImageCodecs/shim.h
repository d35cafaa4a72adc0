#ifndef SONOQUANT_CIMAGECODECS_SHIM_H
#define SONOQUANT_CIMAGECODECS_SHIM_H
// libjpeg's header needs FILE and size_t declared before it.
#include <stdio.h>
#include <stddef.h>
#include <setjmp.h>
#include <png.h>
#include <jpeglib.h>
#endif
