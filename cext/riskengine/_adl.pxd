from riskengine._margin cimport Tiers
from riskengine._typedefs cimport float64_t, i64, i8

cdef struct AdlParams:
    int policy
    int ranking
    bint short_mark_over_entry
    float64_t risk_power
    const Tiers* tiers

cdef struct RatioIndex:
    float64_t ratio
    Py_ssize_t idx

cdef float64_t adl_score(const AdlParams* p, float64_t pos, float64_t col, float64_t entry,
                         float64_t mark) noexcept nogil
cdef float64_t adl_score_account(const AdlParams* p, float64_t pos, float64_t entry,
                                 float64_t mark, float64_t equity, float64_t wallet,
                                 float64_t mm) noexcept nogil
cdef float64_t adl_weight_account(const AdlParams* p, float64_t pos, float64_t entry,
                                  float64_t mark, float64_t equity) noexcept nogil
cdef Py_ssize_t adl_gather(const AdlParams* p, float64_t side, float64_t mark,
                           const float64_t* col, const float64_t* pos, const float64_t* entry,
                           const i8* status, const i64* members, Py_ssize_t n, i64* ids_out,
                           float64_t* scores_out) noexcept nogil
cdef float64_t adl_weight(const AdlParams* p, float64_t pos, float64_t col, float64_t entry,
                          float64_t mark) noexcept nogil
cdef void capped_allocation(const float64_t* weights, const float64_t* caps, Py_ssize_t n,
                            float64_t total, float64_t* out, RatioIndex* order,
                            float64_t* suffix) noexcept nogil
cdef void water_filling(const float64_t* notional, const float64_t* equity,
                        const float64_t* caps, Py_ssize_t n,
                        float64_t mark, float64_t total, float64_t* out,
                        float64_t* scratch, i64* live) noexcept nogil
