// SoapySDR "iqfile" driver: plays an IQ recording as if it were a receiver, so the real
// SoapySDR capture path can run without hardware (CI, demos, regression tests).
// Licence: MIT. Users' guide: docs/soapy-iqfile.md.
//
//   driver=iqfile,path=FILE[,format=cu8|cs8|cs16|cf32|wav16|wavf32|sigmf][,rate=1024k]
//   [,freq=868.13M][,throttle=1][,repeat=0][,time=1][,buffer_s=1.0]
//   [,fail_after=N][,stall_after=N]
//
// The recording is read through the project's iqfile module (every format it knows).
// throttle=1 (default) paces samples in real time from the moment the stream is activated,
// returns SOAPY_SDR_TIMEOUT while no sample is due, and, like a radio whose USB buffers
// fill up, drops the backlog and returns SOAPY_SDR_OVERFLOW when the reader falls more
// than buffer_s seconds behind (buffer_s=0: never drop). throttle=0 delivers as fast as the
// reader asks. time=1 stamps every read with timeNs = sample index / rate
// (SOAPY_SDR_HAS_TIME). At the end of the file, repeat=1 starts again from the beginning;
// repeat=0 sets SOAPY_SDR_END_BURST on the last samples and then fails every read with
// SOAPY_SDR_STREAM_ERROR.
// Fault injection for testing receivers: after fail_after samples every read fails with
// SOAPY_SDR_STREAM_ERROR (a radio that was unplugged), after stall_after samples every
// read times out (a radio that went silent); making the device again starts afresh.
#include <SoapySDR/Device.hpp>
#include <SoapySDR/Errors.hpp>
#include <SoapySDR/Formats.hpp>
#include <SoapySDR/Logger.hpp>
#include <SoapySDR/Registry.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <complex>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "iqfile.h"

namespace {

using Clock = std::chrono::steady_clock;
using cf32 = std::complex<float>;

constexpr size_t kMtuSamples = 16384;

// "1024k", "868.13M", "2.4e6", "1" -> value; throws on anything else.
double parse_number(const std::string &key, const std::string &text)
{
    const char *s = text.c_str();
    char *end = nullptr;
    double v = std::strtod(s, &end);
    if (end == s)
        throw std::runtime_error("iqfile: " + key + "=" + text + " is not a number");
    std::string unit(end);
    if (unit == "k" || unit == "K")
        v *= 1e3;
    else if (unit == "M")
        v *= 1e6;
    else if (unit == "G")
        v *= 1e9;
    else if (!unit.empty())
        throw std::runtime_error("iqfile: " + key + "=" + text + ": unknown unit '" + unit +
                                 "' (use k, M or G)");
    if (!std::isfinite(v) || v < 0.0)
        throw std::runtime_error("iqfile: " + key + "=" + text + " is out of range");
    return v;
}

bool parse_bool(const SoapySDR::Kwargs &args, const std::string &key, bool dflt)
{
    auto it = args.find(key);
    if (it == args.end() || it->second.empty())
        return dflt;
    const std::string &v = it->second;
    if (v == "1" || v == "true" || v == "yes" || v == "on")
        return true;
    if (v == "0" || v == "false" || v == "no" || v == "off")
        return false;
    throw std::runtime_error("iqfile: " + key + "=" + v + " must be 0 or 1");
}

// Opens the recording named by the args; throws with the iqfile module's message.
iqfile_t *open_from_args(const SoapySDR::Kwargs &args)
{
    auto it = args.find("path");
    if (it == args.end() || it->second.empty())
        throw std::runtime_error("iqfile: no path=FILE given");
    iqfile_params_t params{};
    auto f = args.find("format");
    if (f != args.end() && !f->second.empty()) {
        params.format = iq_format_from_name(f->second.c_str());
        if (params.format == IQ_FORMAT_UNKNOWN)
            throw std::runtime_error("iqfile: unknown format=" + f->second +
                                     " (cu8, cs8, cs16, cf32, wav16, wavf32, sigmf)");
    }
    if (args.count("rate"))
        params.rate_sps = parse_number("rate", args.at("rate"));
    if (args.count("freq"))
        params.center_freq_hz = parse_number("freq", args.at("freq"));
    char err[512];
    iqfile_t *file = iqfile_open_read(it->second.c_str(), &params, err, sizeof err);
    if (!file)
        throw std::runtime_error(std::string("iqfile: ") + err);
    return file;
}

// Soapy stream format <-> iqfile sample format.
iq_format_t soapy_to_iq(const std::string &fmt)
{
    if (fmt == SOAPY_SDR_CF32)
        return IQ_FORMAT_CF32;
    if (fmt == SOAPY_SDR_CS16)
        return IQ_FORMAT_CS16;
    if (fmt == SOAPY_SDR_CS8)
        return IQ_FORMAT_CS8;
    if (fmt == SOAPY_SDR_CU8)
        return IQ_FORMAT_CU8;
    return IQ_FORMAT_UNKNOWN;
}

class IQFileDevice : public SoapySDR::Device
{
  public:
    explicit IQFileDevice(const SoapySDR::Kwargs &args)
        : path_(args.at("path")), file_(open_from_args(args))
    {
        try {
            throttle_ = parse_bool(args, "throttle", true);
            repeat_ = parse_bool(args, "repeat", false);
            has_time_ = parse_bool(args, "time", true);
            buffer_s_ = args.count("buffer_s") ? parse_number("buffer_s", args.at("buffer_s"))
                                               : 1.0;
            if (args.count("fail_after"))
                fail_after_ = parse_number("fail_after", args.at("fail_after"));
            if (args.count("stall_after"))
                stall_after_ = parse_number("stall_after", args.at("stall_after"));
        } catch (...) {
            iqfile_close(file_);
            throw;
        }
        if (repeat_ && iqfile_length(file_) < 0) {
            iqfile_close(file_);
            throw std::runtime_error("iqfile: repeat=1 needs a regular file, not " + path_);
        }
        rate_ = iqfile_rate(file_);
        freq_ = iqfile_center_freq(file_);
        SoapySDR::logf(SOAPY_SDR_INFO,
                       "iqfile: opened %s, format: %s, rate_sps: %.0f (%s), center_freq_hz: "
                       "%.0f (%s), throttle: %d, repeat: %d",
                       path_.c_str(), iq_format_name(iqfile_format(file_)), rate_,
                       iq_source_name(iqfile_rate_source(file_)), freq_,
                       iq_source_name(iqfile_center_freq_source(file_)), throttle_, repeat_);
    }

    ~IQFileDevice() override
    {
        iqfile_close(file_);
    }

    std::string getDriverKey() const override
    {
        return "iqfile";
    }

    std::string getHardwareKey() const override
    {
        return "iqfile";
    }

    SoapySDR::Kwargs getHardwareInfo() const override
    {
        SoapySDR::Kwargs info;
        info["path"] = path_;
        info["format"] = iq_format_name(iqfile_container(file_));
        info["sample_format"] = iq_format_name(iqfile_format(file_));
        info["rate_source"] = iq_source_name(iqfile_rate_source(file_));
        info["freq_source"] = iq_source_name(iqfile_center_freq_source(file_));
        info["length_samples"] = std::to_string(iqfile_length(file_));
        info["throttle"] = throttle_ ? "1" : "0";
        info["repeat"] = repeat_ ? "1" : "0";
        return info;
    }

    size_t getNumChannels(const int direction) const override
    {
        return direction == SOAPY_SDR_RX ? 1 : 0;
    }

    // ---- stream ------------------------------------------------------------------------

    std::vector<std::string> getStreamFormats(const int, const size_t) const override
    {
        return {SOAPY_SDR_CF32, SOAPY_SDR_CS16, SOAPY_SDR_CS8, SOAPY_SDR_CU8};
    }

    std::string getNativeStreamFormat(const int, const size_t, double &fullScale) const override
    {
        switch (iqfile_format(file_)) {
        case IQ_FORMAT_CU8:
            fullScale = 128.0;
            return SOAPY_SDR_CU8;
        case IQ_FORMAT_CS8:
            fullScale = 128.0;
            return SOAPY_SDR_CS8;
        case IQ_FORMAT_CS16:
        case IQ_FORMAT_WAV16:
            fullScale = 32768.0;
            return SOAPY_SDR_CS16;
        default:
            fullScale = 1.0;
            return SOAPY_SDR_CF32;
        }
    }

    SoapySDR::Stream *setupStream(const int direction, const std::string &format,
                                  const std::vector<size_t> &channels,
                                  const SoapySDR::Kwargs &) override
    {
        if (direction != SOAPY_SDR_RX)
            throw std::runtime_error("iqfile: only receive streams exist");
        if (channels.size() > 1 || (channels.size() == 1 && channels[0] != 0))
            throw std::runtime_error("iqfile: only channel 0 exists");
        if (stream_open_)
            throw std::runtime_error("iqfile: the stream is already set up");
        out_fmt_ = soapy_to_iq(format);
        if (out_fmt_ == IQ_FORMAT_UNKNOWN)
            throw std::runtime_error("iqfile: stream format " + format +
                                     " not supported (CF32, CS16, CS8, CU8)");
        scratch_.resize(kMtuSamples);
        stream_open_ = true;
        return reinterpret_cast<SoapySDR::Stream *>(this);
    }

    void closeStream(SoapySDR::Stream *) override
    {
        stream_open_ = false;
        active_ = false;
    }

    size_t getStreamMTU(SoapySDR::Stream *) const override
    {
        return kMtuSamples;
    }

    int activateStream(SoapySDR::Stream *, const int flags, const long long, const size_t) override
    {
        if (!stream_open_ || flags != 0)
            return SOAPY_SDR_NOT_SUPPORTED;
        if (throttle_ && !(rate_ > 0.0)) {
            SoapySDR::logf(SOAPY_SDR_ERROR,
                           "iqfile: cannot pace %s: sample rate unknown (give rate=)",
                           path_.c_str());
            return SOAPY_SDR_NOT_SUPPORTED;
        }
        // Time restarts at every activation, like a radio's sample counter.
        t0_ = Clock::now();
        stream_idx_ = 0;
        active_ = true;
        return 0;
    }

    int deactivateStream(SoapySDR::Stream *, const int, const long long) override
    {
        active_ = false;
        return 0;
    }

    int readStream(SoapySDR::Stream *, void *const *buffs, const size_t numElems, int &flags,
                   long long &timeNs, const long timeoutUs) override
    {
        flags = 0;
        if (!active_ || ended_)
            return SOAPY_SDR_STREAM_ERROR;
        size_t n = std::min(numElems, kMtuSamples);
        if (static_cast<double>(stream_idx_) >= fail_after_)
            return SOAPY_SDR_STREAM_ERROR;
        if (static_cast<double>(stream_idx_) >= stall_after_) {
            std::this_thread::sleep_for(std::chrono::microseconds(timeoutUs));
            return SOAPY_SDR_TIMEOUT;
        }
        // A read never crosses an injected fault, so the fault lands on an exact sample.
        double fault = std::min(fail_after_, stall_after_);
        if (static_cast<double>(stream_idx_ + n) > fault)
            n = static_cast<size_t>(fault - static_cast<double>(stream_idx_));
        if (n == 0)
            return 0;
        if (throttle_) {
            double due = seconds_since_start() * rate_; // samples the "radio" has produced
            double backlog = due - static_cast<double>(stream_idx_);
            if (buffer_s_ > 0.0 && backlog > buffer_s_ * rate_) {
                // The reader fell behind: the emulated buffer overflowed. Drop the backlog.
                uint64_t skip = static_cast<uint64_t>(backlog);
                uint64_t skipped = skip_samples(skip);
                stream_idx_ += skipped;
                if (ended_) {
                    flags |= SOAPY_SDR_END_BURST; // the recording ended inside the gap
                    return 0;
                }
                return SOAPY_SDR_OVERFLOW;
            }
            double need = static_cast<double>(n) - backlog;
            if (need > 0.0) {
                double wait_s = need / rate_;
                if (wait_s * 1e6 > static_cast<double>(timeoutUs)) {
                    std::this_thread::sleep_for(std::chrono::microseconds(timeoutUs));
                    due = seconds_since_start() * rate_;
                    double avail = std::floor(due - static_cast<double>(stream_idx_));
                    if (avail < 1.0)
                        return SOAPY_SDR_TIMEOUT;
                    n = std::min(n, static_cast<size_t>(avail));
                } else {
                    std::this_thread::sleep_for(std::chrono::duration<double>(wait_s));
                }
            }
        }
        float _Complex *dst = out_fmt_ == IQ_FORMAT_CF32
                                 ? static_cast<float _Complex *>(buffs[0])
                                 : reinterpret_cast<float _Complex *>(scratch_.data());
        size_t got = read_samples(dst, n);
        if (out_fmt_ != IQ_FORMAT_CF32)
            iq_encode(out_fmt_, dst, buffs[0], got);
        if (has_time_ && rate_ > 0.0) {
            flags |= SOAPY_SDR_HAS_TIME;
            timeNs = std::llround(static_cast<double>(stream_idx_) * 1e9 / rate_);
        }
        stream_idx_ += got;
        if (ended_)
            flags |= SOAPY_SDR_END_BURST;
        return static_cast<int>(got);
    }

    // ---- tuning: the recording's values are fixed ---------------------------------------

    std::vector<std::string> listAntennas(const int, const size_t) const override
    {
        return {"RX"};
    }

    std::string getAntenna(const int, const size_t) const override
    {
        return "RX";
    }

    void setFrequency(const int, const size_t, const double frequency,
                      const SoapySDR::Kwargs &) override
    {
        if (iqfile_center_freq_source(file_) == IQ_SOURCE_NONE) {
            freq_ = frequency; // unknown recording: believe the caller
            return;
        }
        if (std::fabs(frequency - freq_) > 0.5)
            SoapySDR::logf(SOAPY_SDR_WARNING,
                           "iqfile: recording %s is centred at %.0f Hz; request for %.0f Hz "
                           "ignored",
                           path_.c_str(), freq_, frequency);
    }

    double getFrequency(const int, const size_t) const override
    {
        return freq_;
    }

    SoapySDR::RangeList getFrequencyRange(const int, const size_t) const override
    {
        if (iqfile_center_freq_source(file_) == IQ_SOURCE_NONE)
            return {SoapySDR::Range(0.0, 6e9)};
        return {SoapySDR::Range(freq_, freq_)};
    }

    void setSampleRate(const int, const size_t, const double rate) override
    {
        if (iqfile_rate_source(file_) == IQ_SOURCE_NONE) {
            if (active_)
                throw std::runtime_error("iqfile: cannot change the rate while streaming");
            rate_ = rate;
            return;
        }
        if (std::fabs(rate - rate_) > 0.5)
            SoapySDR::logf(SOAPY_SDR_WARNING,
                           "iqfile: recording %s has %.0f S/s; request for %.0f S/s ignored "
                           "(samples are not resampled)",
                           path_.c_str(), rate_, rate);
    }

    double getSampleRate(const int, const size_t) const override
    {
        return rate_;
    }

    std::vector<double> listSampleRates(const int, const size_t) const override
    {
        if (iqfile_rate_source(file_) == IQ_SOURCE_NONE)
            return {};
        return {rate_};
    }

    SoapySDR::RangeList getSampleRateRange(const int, const size_t) const override
    {
        if (iqfile_rate_source(file_) == IQ_SOURCE_NONE)
            return {SoapySDR::Range(1e3, 100e6)};
        return {SoapySDR::Range(rate_, rate_)};
    }

    bool hasHardwareTime(const std::string &what) const override
    {
        return what.empty() && has_time_;
    }

    long long getHardwareTime(const std::string &) const override
    {
        if (!active_ || !(rate_ > 0.0))
            return 0;
        return std::llround(static_cast<double>(stream_idx_) * 1e9 / rate_);
    }

  private:
    double seconds_since_start() const
    {
        return std::chrono::duration<double>(Clock::now() - t0_).count();
    }

    // Reads up to n samples, looping when repeat=1; sets ended_ at the end of the file.
    size_t read_samples(float _Complex *dst, size_t n)
    {
        size_t got = 0;
        bool rewound_empty = false;
        while (got < n) {
            ssize_t k = iqfile_read(file_, dst + got, n - got);
            if (k > 0) {
                got += static_cast<size_t>(k);
                rewound_empty = false;
                continue;
            }
            if (k < 0)
                SoapySDR::logf(SOAPY_SDR_WARNING, "iqfile: %s; treating it as end of file",
                               iqfile_error(file_));
            // Rewinding an empty file would spin: the second empty pass ends it.
            if (repeat_ && !rewound_empty && iqfile_rewind(file_) == 0) {
                rewound_empty = true;
                continue;
            }
            if (!ended_)
                SoapySDR::logf(SOAPY_SDR_INFO, "iqfile: end of %s after %llu samples",
                               path_.c_str(), static_cast<unsigned long long>(stream_idx_ + got));
            ended_ = true;
            break;
        }
        return got;
    }

    uint64_t skip_samples(uint64_t n)
    {
        uint64_t done = 0;
        auto *tmp = reinterpret_cast<float _Complex *>(scratch_.data());
        while (done < n && !ended_)
            done += read_samples(tmp, static_cast<size_t>(
                                          std::min<uint64_t>(n - done, scratch_.size())));
        return done;
    }

    std::string path_;
    iqfile_t *file_;
    bool throttle_ = true;
    bool repeat_ = false;
    bool has_time_ = true;
    double buffer_s_ = 1.0;
    double fail_after_ = HUGE_VAL;  // samples; fault injection
    double stall_after_ = HUGE_VAL; // samples; fault injection
    double rate_ = 0.0;
    double freq_ = 0.0;
    bool stream_open_ = false;
    bool active_ = false;
    bool ended_ = false;
    iq_format_t out_fmt_ = IQ_FORMAT_CF32;
    std::vector<cf32> scratch_;
    Clock::time_point t0_;
    uint64_t stream_idx_ = 0; // samples delivered or dropped since activation
};

SoapySDR::KwargsList find_iqfile(const SoapySDR::Kwargs &args)
{
    auto drv = args.find("driver");
    if (drv != args.end() && drv->second != "iqfile")
        return {};
    // Without a path there is nothing to play; staying silent keeps the driver out of
    // device lists (and out of "first device found") unless asked for.
    if (!args.count("path"))
        return {};
    iqfile_t *file = nullptr;
    try {
        file = open_from_args(args);
    } catch (const std::exception &e) {
        SoapySDR::logf(SOAPY_SDR_WARNING, "%s", e.what());
        return {};
    }
    SoapySDR::Kwargs result = args;
    result["driver"] = "iqfile";
    const std::string &path = args.at("path");
    std::string base = path.substr(path.find_last_of('/') == std::string::npos
                                       ? 0
                                       : path.find_last_of('/') + 1);
    char label[512];
    std::snprintf(label, sizeof label, "IQ file %s (%s, %.0f S/s, %.0f Hz)", base.c_str(),
                  iq_format_name(iqfile_format(file)), iqfile_rate(file),
                  iqfile_center_freq(file));
    result["label"] = label;
    iqfile_close(file);
    return {result};
}

SoapySDR::Device *make_iqfile(const SoapySDR::Kwargs &args)
{
    if (!args.count("path"))
        throw std::runtime_error("iqfile: no path=FILE given");
    return new IQFileDevice(args);
}

SoapySDR::Registry register_iqfile("iqfile", &find_iqfile, &make_iqfile,
                                   SOAPY_SDR_ABI_VERSION);

} // namespace
