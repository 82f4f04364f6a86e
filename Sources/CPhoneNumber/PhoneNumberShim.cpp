#include "CPhoneNumber.h"

#include <cstring>
#include <string>

#include <phonenumbers/phonenumberutil.h>

using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberUtil;

extern "C" int relay_phone_to_e164(const char *raw, const char *default_region, char *out, int capacity) {
    if (raw == nullptr || default_region == nullptr || out == nullptr || capacity <= 0) {
        return -1;
    }
    const PhoneNumberUtil &util = *PhoneNumberUtil::GetInstance();
    PhoneNumber number;
    if (util.Parse(raw, default_region, &number) != PhoneNumberUtil::NO_PARSING_ERROR) {
        return -1;
    }
    // "Possible" (a plausible length for the country), not "valid" (an assigned range): the
    // library's metadata ages, and a caller on a newly opened range must still be matched.
    if (!util.IsPossibleNumber(number)) {
        return -1;
    }
    std::string formatted;
    util.Format(number, PhoneNumberUtil::E164, &formatted);
    if (formatted.size() + 1 > static_cast<size_t>(capacity)) {
        return -1;
    }
    std::memcpy(out, formatted.c_str(), formatted.size() + 1);
    return static_cast<int>(formatted.size());
}
