"""Demo traffic: Indonesian messages written for this project (not from any dataset).

A mix of complaints across categories, a few questions, praise and noise, in the informal
register citizens use on Instagram. Placeholders like {kel} are filled with place names."""

COMPLAINTS = [
    "Jalan di {kel} rusak parah, lubangnya dalam bgt pak, udh 2 motor jatuh minggu ini",
    "Mohon aspal jl. {kel} segera diperbaiki, tiap hujan jadi kubangan",
    "Lampu PJU di gang 3 {kel} mati sudah seminggu, gelap dan rawan begal",
    "Lampu jalan depan SD negeri {kel} kedip2 terus, tolong dicek min",
    "Sampah di TPS {kel} menumpuk 4 hari tdk diangkut, baunya sampai ke rumah warga",
    "Truk sampah gak lewat lagi di RT 05 RW 02 {kel}, sampah numpuk di depan rumah",
    "Saluran air di {kel} mampet, tiap hujan sebentar langsung banjir sampai masuk rumah",
    "Got depan pasar {kel} penuh lumpur, tolong dikeruk sebelum musim hujan",
    "Banjir setinggi lutut di {kel} sekarang, air masuk rumah warga, mohon bantuan",
    "Pohon besar di jalan raya {kel} rantingnya hampir patah, bahaya buat pengendara",
    "Pohon tumbang menutup jalan di {kel}, kendaraan tidak bisa lewat",
    "Air PDAM di {kel} mati dari kemarin pagi, gak ada pemberitahuan sama sekali",
    "Air PDAM keruh dan bau kaporit di {kel}, apa aman buat diminum?",
    "Banyak jukir liar di trotoar {kel}, parkir sembarangan bikin macet",
    "Lampu lalu lintas di perempatan {kel} mati, macet total pagi ini",
    "KTP-el saya sudah 3 bulan belum jadi, katanya blangko habis terus",
    "Mau urus akta kelahiran anak tapi antrian online di dispenduk selalu penuh",
    "Bansos untuk lansia di {kel} tidak tepat sasaran, tetangga yg mampu malah dapat",
    "Ibu saya terdaftar MBR tapi bantuan sembako tidak pernah diterima",
    "Pelayanan puskesmas {kel} lambat, antri dari jam 7 baru dipanggil jam 12",
    "PKL berjualan di trotoar depan stasiun, pejalan kaki terpaksa jalan di aspal",
    "Ada kebakaran di gudang dekat pasar {kel}, asap hitam tebal, mohon damkar segera",
    "Anak saya tidak diterima PPDB zonasi padahal rumah dekat sekolah di {kel}",
    "Ada pungli saat mengurus surat pindah di kelurahan {kel}, diminta Rp 100.000",
    "Tolong hubungi saya di 0812-3456-7890, jalan depan rumah saya di {kel} ambles",
]

OTHER = [
    "Terima kasih Pemkot, jalan di {kel} sekarang sudah mulus, mantap!",
    "Min, jam buka layanan KTP hari Sabtu sampai jam berapa ya?",
    "Usul min, taman di {kel} dikasih lampu lebih banyak biar anak muda bisa olahraga malam",
    "Promo pinjaman online cepat cair tanpa jaminan, DM kami sekarang",
]

KELURAHAN = [
    "Rungkut Tengah",
    "Wonorejo",
    "Kedung Baruk",
    "Medokan Ayu",
    "Gubeng",
    "Ketintang",
    "Wonokromo",
    "Tambaksari",
    "Kenjeran",
    "Sukolilo",
    "Mulyorejo",
    "Tegalsari",
]

AGENCY_REPLIES = [
    "Terima kasih laporannya, sudah kami teruskan ke dinas terkait untuk ditindaklanjuti.",
    "Baik, petugas kami akan ke lokasi hari ini. Mohon kirim titik lokasinya via DM.",
]
