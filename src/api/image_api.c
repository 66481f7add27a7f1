/* Images through the public API: a PNG made into one frame of the
 * reference network's input.  Programs that use the library (the C
 * example, the Python package) then need no PNG library of their own and
 * feed the network exactly what the command line feeds it. */
#include "api/api.h"
#include "image/image.h"

mtmi_status mtmi_image_load(const char *path, int height, int width, float *chw) {
    if (!path || !chw) return mt_fail(MTMI_ERR_ARG, "mtmi_image_load: NULL argument");
    mt_clear_error();
    if (height <= 0 || width <= 0 || height > 65536 || width > 65536)
        return mt_fail(MTMI_ERR_ARG, "mtmi_image_load: size %dx%d outside 1..65536", height, width);
    mt_image img = {0}, fit = {0};
    mtmi_status s = mt_png_read(path, &img);
    if (!s) s = mt_image_fit(&img, width, height, &fit);
    if (!s) mt_image_to_chw(&fit, chw);
    mt_image_free(&img);
    mt_image_free(&fit);
    return s;
}
